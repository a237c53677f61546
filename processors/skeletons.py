"""Skeletons: joint names and the kinematic chains that become the motion-patch body parts.

Every chain runs from the body centre outward. Presets store their chains under canonical part
names, and the columns of a motion-patch image follow `CANONICAL_PART_ORDER` so that one model sees
the same body part in the same columns whatever the skeleton. The reference implementation used
a different order per dataset (HumanML3D: right leg, left leg, torso, right arm, left arm; KIT-ML:
left leg, right leg, torso, left arm, right arm); `part_order="reference"` reproduces it for
checkpoints trained that way.

Shipped with saved checkpoints as remote code: imports only the standard library and siblings.
"""

import json
import os
from dataclasses import dataclass, field

from .motion_files import check_fps

CANONICAL_PART_ORDER = ("torso", "left_arm", "right_arm", "left_leg", "right_leg")


@dataclass(frozen=True)
class Skeleton:
    """A named joint set and its body-part chains (joint indices, ordered centre -> extremity)."""

    name: str
    joint_names: tuple[str, ...]
    chains: dict[str, tuple[int, ...]]
    # part names in the order the reference implementation concatenated them (presets only)
    reference_order: tuple[str, ...] | None = None
    fps: float | None = field(default=None, compare=False)

    def __post_init__(self):
        num_joints = len(self.joint_names)
        if num_joints == 0:
            raise ValueError(f"skeleton {self.name!r} has no joint names")
        if len(set(self.joint_names)) != num_joints:
            duplicated = sorted({j for j in self.joint_names if self.joint_names.count(j) > 1})
            raise ValueError(f"skeleton {self.name!r} repeats joint names {duplicated}")
        if not self.chains:
            raise ValueError(f"skeleton {self.name!r} has no chains")
        for part, chain in self.chains.items():
            if len(chain) == 0:
                raise ValueError(f"skeleton {self.name!r}: chain {part!r} is empty")
            bad = [j for j in chain if not 0 <= j < num_joints]
            if bad:
                raise ValueError(
                    f"skeleton {self.name!r}: chain {part!r} has joint index {bad[0]} out of range "
                    f"for {num_joints} joints (valid 0..{num_joints - 1})"
                )
        if self.fps is not None:
            check_fps(self.fps, "fps", f"skeleton {self.name!r}")
        if self.reference_order is not None and sorted(self.reference_order) != sorted(self.chains):
            raise ValueError(
                f"skeleton {self.name!r}: reference_order {list(self.reference_order)} does not list the "
                f"chains {sorted(self.chains)}"
            )

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def ordered_chains(self, part_order="canonical") -> list[tuple[str, tuple[int, ...]]]:
        """(part name, chain) pairs in column order.

        `part_order` is `"canonical"` (CANONICAL_PART_ORDER where the parts carry those names, else the
        order the chains were given in), `"reference"` (the reference implementation's order, presets
        only) or an explicit list of part names.
        """
        if part_order == "canonical":
            if set(self.chains) == set(CANONICAL_PART_ORDER):
                names = list(CANONICAL_PART_ORDER)
            else:
                names = list(self.chains)
        elif part_order == "reference":
            if self.reference_order is None:
                raise ValueError(
                    f"skeleton {self.name!r} has no reference part order; use part_order='canonical' or a list of "
                    f"part names from {list(self.chains)}"
                )
            names = list(self.reference_order)
        elif isinstance(part_order, (list, tuple)):
            names = list(part_order)
            if sorted(names) != sorted(self.chains):
                raise ValueError(
                    f"part_order {names} must name each chain of skeleton {self.name!r} once: {sorted(self.chains)}"
                )
        else:
            raise ValueError(f"part_order must be 'canonical', 'reference' or a list of part names, got {part_order!r}")
        return [(name, self.chains[name]) for name in names]

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "joint_names": list(self.joint_names),
            "chains": {part: list(chain) for part, chain in self.chains.items()},
        }
        if self.reference_order is not None:
            out["reference_order"] = list(self.reference_order)
        if self.fps is not None:
            out["fps"] = self.fps
        return out

    @classmethod
    def from_dict(cls, spec: dict, source: str = "skeleton dict") -> "Skeleton":
        """Build from `{"name", "joint_names", "chains"}`; chains map part name -> joints or are a list of
        joint lists, and joints are indices or joint names."""
        if not isinstance(spec, dict):
            raise TypeError(f"{source}: expected a JSON object / dict, got {type(spec).__name__}")
        missing = [key for key in ("joint_names", "chains") if key not in spec]
        if missing:
            raise ValueError(f"{source}: missing {missing}; a skeleton needs 'joint_names' and 'chains'")
        joint_names = tuple(str(name) for name in spec["joint_names"])
        chains = spec["chains"]
        if isinstance(chains, (list, tuple)):
            chains = {f"part{i}": chain for i, chain in enumerate(chains)}
        if not isinstance(chains, dict):
            raise TypeError(f"{source}: 'chains' must be a dict of part name -> joints or a list of joint lists")
        index_of = {name: i for i, name in enumerate(joint_names)}
        resolved = {}
        for part, chain in chains.items():
            indices = []
            for joint in chain:
                if isinstance(joint, str):
                    if joint not in index_of:
                        raise ValueError(f"{source}: chain {part!r} names joint {joint!r}, which is not in joint_names")
                    indices.append(index_of[joint])
                elif isinstance(joint, int) and not isinstance(joint, bool):
                    indices.append(joint)
                else:
                    raise TypeError(f"{source}: chain {part!r} has {joint!r}; joints are indices or names")
            resolved[str(part)] = tuple(indices)
        reference_order = spec.get("reference_order")
        return cls(
            name=str(spec.get("name", "custom")),
            joint_names=joint_names,
            chains=resolved,
            reference_order=tuple(reference_order) if reference_order else None,
            fps=spec.get("fps"),
        )

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "Skeleton":
        try:
            with open(path, encoding="utf-8") as f:
                spec = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"skeleton file not found: {path}") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"skeleton file {path} is not valid JSON: {err}") from None
        return cls.from_dict(spec, source=f"skeleton file {path}")


SKELETON_PRESETS = {
    "humanml3d": Skeleton(
        name="humanml3d",
        joint_names=(
            "pelvis",
            "left_hip",
            "right_hip",
            "spine1",
            "left_knee",
            "right_knee",
            "spine2",
            "left_ankle",
            "right_ankle",
            "spine3",
            "left_foot",
            "right_foot",
            "neck",
            "left_collar",
            "right_collar",
            "head",
            "left_shoulder",
            "right_shoulder",
            "left_elbow",
            "right_elbow",
            "left_wrist",
            "right_wrist",
        ),
        chains={
            "torso": (0, 3, 6, 9, 12, 15),
            "left_arm": (9, 13, 16, 18, 20),
            "right_arm": (9, 14, 17, 19, 21),
            "left_leg": (0, 1, 4, 7, 10),
            "right_leg": (0, 2, 5, 8, 11),
        },
        reference_order=("right_leg", "left_leg", "torso", "right_arm", "left_arm"),
        fps=20.0,
    ),
    # KIT-ML / MMM 21-joint skeleton; in its frame +x is the subject's left side.
    "kit": Skeleton(
        name="kit",
        joint_names=(
            "root",
            "BP",
            "BT",
            "BLN",
            "BUN",
            "LS",
            "LE",
            "LW",
            "RS",
            "RE",
            "RW",
            "LH",
            "LK",
            "LA",
            "LMrot",
            "LF",
            "RH",
            "RK",
            "RA",
            "RMrot",
            "RF",
        ),
        chains={
            "torso": (0, 1, 2, 3, 4),
            "left_arm": (3, 5, 6, 7),
            "right_arm": (3, 8, 9, 10),
            "left_leg": (0, 11, 12, 13, 14, 15),
            "right_leg": (0, 16, 17, 18, 19, 20),
        },
        reference_order=("left_leg", "right_leg", "torso", "left_arm", "right_arm"),
        fps=12.5,
    ),
}


_SMPL_BODY_NAMES = SKELETON_PRESETS["humanml3d"].joint_names
_SMPL_CHAINS = SKELETON_PRESETS["humanml3d"].chains
_SMPLX_HAND_NAMES = tuple(
    f"{side}_{finger}{i}"
    for side in ("left", "right")
    for finger in ("index", "middle", "pinky", "ring", "thumb")
    for i in (1, 2, 3)
)

SKELETON_PRESETS.update(
    {
        # SMPL's 24 joints: the 22 body joints plus the two hands, which extend the arm chains.
        "smpl24": Skeleton(
            name="smpl24",
            joint_names=(*_SMPL_BODY_NAMES, "left_hand", "right_hand"),
            chains={**_SMPL_CHAINS, "left_arm": (9, 13, 16, 18, 20, 22), "right_arm": (9, 14, 17, 19, 21, 23)},
        ),
        # SMPL-X joint regressor output (55 joints): SMPL's 22 body joints, jaw, eyes, then 15 joints per
        # hand. The chains use the body joints, so a (T, 55, 3) array goes in as it is.
        "smplx": Skeleton(
            name="smplx",
            joint_names=(*_SMPL_BODY_NAMES, "jaw", "left_eye_smplhf", "right_eye_smplhf", *_SMPLX_HAND_NAMES),
            chains=dict(_SMPL_CHAINS),
        ),
        # Human3.6M 17 joints in the order MotionBERT and most 3D pose estimators use.
        "h36m": Skeleton(
            name="h36m",
            joint_names=(
                "pelvis",
                "right_hip",
                "right_knee",
                "right_ankle",
                "left_hip",
                "left_knee",
                "left_ankle",
                "spine",
                "thorax",
                "nose",
                "head",
                "left_shoulder",
                "left_elbow",
                "left_wrist",
                "right_shoulder",
                "right_elbow",
                "right_wrist",
            ),
            chains={
                "torso": (0, 7, 8, 9, 10),
                "left_arm": (8, 11, 12, 13),
                "right_arm": (8, 14, 15, 16),
                "left_leg": (0, 4, 5, 6),
                "right_leg": (0, 1, 2, 3),
            },
            fps=50.0,
        ),
        # NTU RGB+D / Kinect v2, 25 joints; the thumbs are left out of the chains.
        "ntu": Skeleton(
            name="ntu",
            joint_names=(
                "spine_base",
                "spine_mid",
                "neck",
                "head",
                "shoulder_left",
                "elbow_left",
                "wrist_left",
                "hand_left",
                "shoulder_right",
                "elbow_right",
                "wrist_right",
                "hand_right",
                "hip_left",
                "knee_left",
                "ankle_left",
                "foot_left",
                "hip_right",
                "knee_right",
                "ankle_right",
                "foot_right",
                "spine_shoulder",
                "hand_tip_left",
                "thumb_left",
                "hand_tip_right",
                "thumb_right",
            ),
            chains={
                "torso": (0, 1, 20, 2, 3),
                "left_arm": (20, 4, 5, 6, 7, 21),
                "right_arm": (20, 8, 9, 10, 11, 23),
                "left_leg": (0, 12, 13, 14, 15),
                "right_leg": (0, 16, 17, 18, 19),
            },
            fps=30.0,
        ),
    }
)


def skeleton_hint(num_joints: int) -> str:
    """What to do when motions have `num_joints` joints and the skeleton in use has another count."""
    presets = [name for name, preset in SKELETON_PRESETS.items() if preset.num_joints == num_joints]
    if presets:
        options = " or ".join(f"skeleton={name!r} (--skeleton {name})" for name in presets)
        return f"for {num_joints} joints use {options}"
    return (
        f"no preset has {num_joints} joints: describe them in a JSON skeleton file and pass skeleton='rig.json' "
        "(--skeleton rig.json)"
    )


def resolve_skeleton(skeleton) -> Skeleton:
    """A `Skeleton` from a preset name, a JSON file path, a dict, or a `Skeleton`."""
    if isinstance(skeleton, Skeleton):
        return skeleton
    if isinstance(skeleton, dict):
        return Skeleton.from_dict(skeleton)
    if isinstance(skeleton, (str, os.PathLike)):
        key = str(skeleton)
        if key in SKELETON_PRESETS:
            return SKELETON_PRESETS[key]
        if key.endswith(".json") or os.path.sep in key:
            return Skeleton.from_json_file(key)
        raise ValueError(
            f"unknown skeleton {key!r}: use a preset {sorted(SKELETON_PRESETS)}, a path to a .json skeleton file, "
            "or a dict with 'joint_names' and 'chains'"
        )
    raise TypeError(f"skeleton must be a preset name, a JSON path, a dict or a Skeleton, got {type(skeleton).__name__}")
