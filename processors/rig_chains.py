"""The five motion-patch body chains of a rig, found from its joint names (and hierarchy).

Names of common rigs (Mixamo, CMU, 3ds Max Biped, MotionBuilder, Unreal, SMPL-style names) are
split into words and matched by role; `skeleton_from_bvh` turns a loaded BVH file into a `Skeleton`.
Kept apart from the BVH parser: the rules concern names, not the file format.

Shipped with saved checkpoints as remote code: imports only the standard library and siblings.
"""

import os
import re
from typing import NamedTuple

from .skeletons import CANONICAL_PART_ORDER, Skeleton


class _Role(NamedTuple):
    side: str | None  # "left", "right" or None (torso)
    limb: str  # "torso", "arm" or "leg"
    rank: int  # position along the limb, centre outward (see the _*_rank functions)


_SIDES = {"left": "left", "l": "left", "right": "right", "r": "right"}
# placeholders at chain ends and helper bones that never belong in a chain
_HELPER_WORDS = frozenset({"end", "nub", "site", "tip", "top", "twist", "roll", "ik", "pole", "target"})
_FINGER_WORDS = frozenset(
    {"finger", "fingers", "thumb", "index", "middle", "ring", "pinky", "pinkie", "little", "carpal", "metacarpal"}
)
_TORSO_WORDS = {
    0: {"hips", "hip", "pelvis"},
    1: {"spine", "back", "chest", "torso", "abdomen", "waist", "thorax", "lumbar"},
    2: {"neck"},
    3: {"head", "skull"},
}
_LIMB_WORDS = {
    "shoulder",
    "clavicle",
    "collar",
    "scapula",
    "arm",
    "humerus",
    "elbow",
    "hand",
    "wrist",
    "palm",
    "thigh",
    "femur",
    "leg",
    "knee",
    "shin",
    "calf",
    "tibia",
    "foot",
    "ankle",
    "toe",
    "toes",
    "ball",
    "up",
    "upper",
    "low",
    "lower",
    "fore",
    "joint",
    "base",
}
# words that glued names ("lefthand", "lhip", "upperarm") are split into
_VOCABULARY = frozenset(_SIDES) | _HELPER_WORDS | _FINGER_WORDS | _LIMB_WORDS | set().union(*_TORSO_WORDS.values())

_PART_HINTS = {
    "torso": "a head ('Head', 'head', 'Bip01 Head')",
    "left_arm": "a left hand or wrist ('LeftHand', 'l_wrist', 'Bip01 L Hand')",
    "right_arm": "a right hand or wrist ('RightHand', 'r_wrist', 'Bip01 R Hand')",
    "left_leg": "a left foot, ankle or toe ('LeftFoot', 'l_ankle', 'LeftToeBase')",
    "right_leg": "a right foot, ankle or toe ('RightFoot', 'r_ankle', 'RightToeBase')",
}


def chains_from_joint_names(joint_names, parents=None, mapping=None) -> dict[str, tuple[int, ...]]:
    """The five canonical body chains (joint indices, centre -> extremity) of a rig, from its joint names.

    Names are matched case-insensitively word by word, so namespaces and prefixes (`mixamorig:`,
    `Bip01 `, `Character1_`) and styles (`LeftUpLeg`, `L_Hip`, `thigh_l`, `left_elbow`, `LHipJoint`)
    all work; finger joints, twist/IK helpers and end markers (`HeadTop_End`, `L Toe0Nub`) are never used.

    With `parents` the chains follow the hierarchy: the torso runs from the joint where the legs and
    the spine meet (pelvis/hips) to the head; each arm from the spine joint it branches off to the
    hand; each leg from the pelvis to the toe (or the foot/ankle when there is no toe). Without
    `parents`, joints are ordered by their role (spine before neck, upper arm before forearm, ...)
    and then by index; the arms start at the uppermost spine joint, and the first joint stands for
    the pelvis when none is named hips/pelvis.

    `mapping` (part name -> joint names or indices, centre outward) fixes some or all parts; the other
    parts are still found automatically. A part that cannot be found raises ValueError.
    """
    names = _unique_names(joint_names)
    if parents is not None:
        parents = _checked_parents(parents, len(names))
    chains = _mapped_chains(names, mapping or {})
    roles = [_role(name) for name in names]
    ends = {part: chain[-1] for part, chain in chains.items()}
    for part in CANONICAL_PART_ORDER:
        if part not in ends:
            ends[part] = _chain_end(roles, part)
    missing = [part for part in CANONICAL_PART_ORDER if ends[part] is None]
    if missing:
        hints = "; ".join(f"{part}: looked for {_PART_HINTS[part]}" for part in missing)
        example = ", ".join(f"{part!r}: [...]" for part in missing)
        raise ValueError(
            f"could not find the body parts {missing} among the joint names {list(names)} ({hints}). "
            f"Pass mapping={{{example}}} listing each part's joint names from the body centre outward."
        )
    build = _TreeChains(parents) if parents is not None else _NamedChains(roles)
    if "torso" not in chains:
        chains["torso"] = build.torso(ends)
    for part in CANONICAL_PART_ORDER[1:]:
        if part not in chains:
            chains[part] = build.limb(part, ends[part], chains["torso"])
    return {part: chains[part] for part in CANONICAL_PART_ORDER}


def skeleton_from_bvh(motion, mapping=None, name: str | None = None) -> Skeleton:
    """A `Skeleton` for the rig of a loaded BVH file, a `bvh.BvhMotion` (anything with `joint_names`,
    `parents`, `fps` and `path`; not imported, since `bvh.py` uses these chains to find the body it
    measures). The name defaults to the file name without extension."""
    chains = chains_from_joint_names(motion.joint_names, motion.parents, mapping)
    name = name if name is not None else os.path.splitext(os.path.basename(motion.path))[0]
    return Skeleton(name=name, joint_names=motion.joint_names, chains=chains, fps=motion.fps)


def _words(name: str) -> set[str]:
    """Lower-case words of a joint name: namespace dropped, camelCase / separators / digits split."""
    name = re.split(r"[:|]", name)[-1]
    words = set()
    for word in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name):
        words.update(_segment(word.lower()))
    return words


def _segment(word: str) -> list[str]:
    """Splits a glued word ("lefthand", "lhip") into the fewest vocabulary words, or keeps it whole."""
    if word in _VOCABULARY:
        return [word]
    best = {0: []}
    for end in range(1, len(word) + 1):
        for start in range(end):
            if start in best and word[start:end] in _VOCABULARY:
                candidate = best[start] + [word[start:end]]
                if end not in best or len(candidate) < len(best[end]):
                    best[end] = candidate
    return best.get(len(word), [word])


def _role(name: str) -> _Role | None:
    words = _words(name)
    if words & (_HELPER_WORDS | _FINGER_WORDS):
        return None
    side = next((_SIDES[word] for word in ("left", "l", "right", "r") if word in words), None)
    if side is None:
        rank = next((rank for rank in (3, 2, 1, 0) if words & _TORSO_WORDS[rank]), None)
        return None if rank is None else _Role(None, "torso", rank)
    for limb, rank in (("arm", _arm_rank(words)), ("leg", _leg_rank(words))):
        if rank is not None:
            return _Role(side, limb, rank)
    return None


def _arm_rank(words: set[str]) -> int | None:
    # "shoulder" is the clavicle in Mixamo/CMU (LeftShoulder -> LeftArm) and the upper arm in SMPL
    # (left_collar -> left_shoulder); giving it the clavicle's rank keeps both in order by index
    if words & {"hand", "wrist", "palm"}:
        return 3
    if "elbow" in words or ("arm" in words and words & {"fore", "lower", "low"}):
        return 2
    if words & {"arm", "humerus"}:
        return 1
    if words & {"shoulder", "clavicle", "collar", "scapula"}:
        return 0
    return None


def _leg_rank(words: set[str]) -> int | None:
    # SMPL's "left_foot" is the toe joint below "left_ankle": same rank, kept in order by index
    if words & {"toe", "toes", "ball"}:
        return 4
    if words & {"foot", "ankle"}:
        return 3
    if words & {"knee", "shin", "calf", "tibia"} or ("leg" in words and not words & {"up", "upper"}):
        return 2
    if words & {"hip", "hips", "thigh", "femur", "leg"}:
        return 1
    return None


_PART_ROLES = {
    "torso": (None, "torso", 3),
    "left_arm": ("left", "arm", 3),
    "right_arm": ("right", "arm", 3),
    "left_leg": ("left", "leg", 3),
    "right_leg": ("right", "leg", 3),
}


def _chain_end(roles: list[_Role | None], part: str) -> int | None:
    """The joint a part ends at: the highest-ranked match (toe over foot), the last one on a tie."""
    side, limb, lowest_rank = _PART_ROLES[part]
    matches = [(role.rank, j) for j, role in enumerate(roles) if role and role.limb == limb and role.side == side]
    matches = [match for match in matches if match[0] >= lowest_rank]
    return max(matches)[1] if matches else None


class _TreeChains:
    """Chains as paths in the joint hierarchy, between joints found by name."""

    def __init__(self, parents: tuple[int, ...]):
        self.parents = parents

    def ancestors(self, joint: int) -> list[int]:
        path = [joint]
        while self.parents[path[-1]] >= 0:
            path.append(self.parents[path[-1]])
        return path

    def common_ancestor(self, *joints: int) -> int:
        shared = set(self.ancestors(joints[0])).intersection(*(self.ancestors(j) for j in joints[1:]))
        return next(j for j in self.ancestors(joints[0]) if j in shared)

    def path(self, top: int, bottom: int) -> tuple[int, ...]:
        up = self.ancestors(bottom)
        return tuple(reversed(up[: up.index(top) + 1]))

    def torso(self, ends: dict) -> tuple[int, ...]:
        pelvis = self.common_ancestor(ends["torso"], ends["left_leg"], ends["right_leg"])
        return self.path(pelvis, ends["torso"])

    def limb(self, part: str, end: int, torso: tuple[int, ...]) -> tuple[int, ...]:
        anchor = torso[-1] if part.endswith("arm") else torso[0]
        return self.path(self.common_ancestor(anchor, end), end)


class _NamedChains:
    """Chains from names alone: joints sorted by role rank, then by index."""

    def __init__(self, roles: list):
        self.roles = roles

    def members(self, side: str | None, limb: str) -> list[int]:
        found = [
            (role.rank, j) for j, role in enumerate(self.roles) if role and role.limb == limb and role.side == side
        ]
        return [j for _, j in sorted(found)]

    def torso(self, ends: dict) -> tuple[int, ...]:
        members = self.members(None, "torso")
        pelvis = [j for j in members if self.roles[j].rank == 0] or [0]
        return tuple(pelvis + [j for j in members if j not in pelvis])

    def limb(self, part: str, end: int, torso: tuple[int, ...]) -> tuple[int, ...]:
        side, limb = part.split("_")
        anchor = torso[0] if limb == "leg" else self.arm_branch(torso)
        return (anchor, *self.members(side, limb))

    def arm_branch(self, torso: tuple[int, ...]) -> int:
        """The uppermost torso joint below the neck; the one before the last if no neck or head is named."""
        roles = [self.roles[j] for j in torso]
        upper = [i for i, role in enumerate(roles) if role and role.limb == "torso" and role.rank >= 2]
        first_upper = upper[0] if upper else len(torso) - 1
        return torso[max(first_upper - 1, 0)]


def _unique_names(joint_names) -> tuple[str, ...]:
    """The names as strings; a repeated one is refused here, before it sends a chain to the wrong joint."""
    names = tuple(str(name) for name in joint_names)
    first = {}
    for j, name in enumerate(names):
        if name in first:
            raise ValueError(
                f"joint names must be unique: {name!r} is joint {first[name]} and joint {j}; rename one of them"
            )
        first[name] = j
    return names


def _checked_parents(parents, num_joints: int) -> tuple[int, ...]:
    parents = tuple(int(p) for p in parents)
    if len(parents) != num_joints:
        raise ValueError(f"parents has {len(parents)} entries for {num_joints} joint names")
    for j, parent in enumerate(parents):
        if not -1 <= parent < num_joints or parent == j:
            raise ValueError(f"parents[{j}] = {parent} is not -1 or another joint's index (0..{num_joints - 1})")
    for j in range(num_joints):
        seen, node = set(), j
        while node >= 0:
            if node in seen:
                raise ValueError(f"parents form a cycle through joint {j}")
            seen.add(node)
            node = parents[node]
    return parents


def _mapped_chains(names: tuple[str, ...], mapping: dict) -> dict[str, tuple[int, ...]]:
    """Validates `mapping` and turns its joint names (or indices) into indices."""
    unknown = [part for part in mapping if part not in CANONICAL_PART_ORDER]
    if unknown:
        raise ValueError(f"mapping names unknown parts {unknown}; the parts are {list(CANONICAL_PART_ORDER)}")
    index_of = {name: j for j, name in enumerate(names)}
    chains = {}
    for part, joints in mapping.items():
        if isinstance(joints, (str, bytes)) or not joints:
            raise ValueError(f"mapping[{part!r}] must be a non-empty list of joint names, got {joints!r}")
        chain = []
        for joint in joints:
            if isinstance(joint, str) and joint in index_of:
                chain.append(index_of[joint])
            elif isinstance(joint, int) and not isinstance(joint, bool) and 0 <= joint < len(names):
                chain.append(joint)
            else:
                raise ValueError(
                    f"mapping[{part!r}] names joint {joint!r}, which is not among the joints {list(names)}"
                )
        chains[part] = tuple(chain)
    return chains
