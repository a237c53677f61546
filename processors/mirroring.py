"""Mirroring: a motion performed with the other side of the body, and its caption with the sides swapped.

A mirrored motion is the original reflected across the body's sagittal plane: every left joint takes its
right partner's trajectory and the lateral coordinate changes sign. The partners come from the skeleton:
a chain whose part name carries a left marker ("left_arm", "LeftArm", "l_arm", "arm.L") pairs element-wise
with the chain named with the right marker in its place, and joints outside the chains (SMPL-X fingers and
eyes, NTU thumbs) pair by their own names. Reflecting also turns a clockwise turn into a counterclockwise
one, so the caption's side words swap with it, as HumanML3D's own mirrored `M` files do.

Shipped with saved checkpoints as remote code: imports only the standard library, numpy and siblings.
"""

import re

import numpy as np

from .skeletons import Skeleton, resolve_skeleton, skeleton_hint

_OTHER_SIDE = {"left": "right", "right": "left", "l": "r", "r": "l"}
# whole-word markers are tried before single letters: "LeftArm" must not become "ReftArm" first
_WORD_MARKERS = ("left", "right")
_LETTER_MARKERS = ("l", "r")


def _starts_word(name: str, i: int) -> bool:
    """Whether a word starts at `name[i]`: after the start, a separator, or a lower-to-upper case step."""
    return i == 0 or not name[i - 1].isalpha() or (name[i - 1].islower() and name[i].isupper())


def _ends_word(name: str, j: int) -> bool:
    """Whether the word `name[:j]` ends at j: at the end, before a separator, or before a lower-to-upper step."""
    return j == len(name) or not name[j].isalpha() or (name[j - 1].islower() and name[j].isupper())


def _same_case(word: str, like: str) -> str:
    if len(like) > 1 and like.isupper():
        return word.upper()
    if like[0].isupper():
        return word[0].upper() + word[1:]
    return word


def _side_swaps(name: str) -> list[tuple[str, str, bool]]:
    """(side, name with that side marker swapped, whether the marker is a whole word "left"/"right") for every
    side marker in `name`, whole words first.

    A single letter (KIT's "LS", Blender's "hand.L", "l_arm", "Bip01 L Hand") needs only to start a word: the
    caller keeps a swap only when the swapped name exists, which rules out "root" -> "loot".
    """
    lowered = name.lower()
    swaps = []
    for markers, whole_word in ((_WORD_MARKERS, True), (_LETTER_MARKERS, False)):
        for marker in markers:
            for match in re.finditer(marker, lowered):
                i, j = match.span()
                if not _starts_word(name, i) or (whole_word and not _ends_word(name, j)):
                    continue
                side = "left" if marker[0] == "l" else "right"
                swapped = _same_case(_OTHER_SIDE[marker], name[i:j])
                swaps.append((side, name[:i] + swapped + name[j:], whole_word))
    return swaps


def _partner(name: str, names) -> tuple[str, str] | None:
    """(side, partner name) of the first side swap of `name` that names another member of `names`."""
    for side, swapped, _ in _side_swaps(name):
        if swapped in names:
            return side, swapped
    return None


def _chain_pairs(skeleton: Skeleton) -> list[tuple[str, str]]:
    """(left part, right part) for every pair of chains whose part names differ only in the side marker."""
    pairs, unpaired = [], []
    for part in skeleton.chains:
        found = _partner(part, skeleton.chains)
        if found is None:
            # a lone "l"/"r" may be an ordinary letter ("legs"), a whole "left"/"right" word is a side
            if any(whole_word for _, _, whole_word in _side_swaps(part)):
                unpaired.append(part)
        elif found[0] == "left":
            pairs.append((part, found[1]))
    if unpaired:
        raise ValueError(
            f"skeleton {skeleton.name!r}: chain(s) {unpaired} name a side but no chain has the other side's name "
            f"(chains {list(skeleton.chains)}); mirroring pairs e.g. 'left_arm' with 'right_arm'"
        )
    return pairs


def _name_partners(skeleton: Skeleton) -> dict[int, int]:
    """Joint index -> its partner's index, for joints whose names differ only in the side marker."""
    index_of = {name: i for i, name in enumerate(skeleton.joint_names)}
    partners = {}
    for i, name in enumerate(skeleton.joint_names):
        found = _partner(name, index_of)
        if found is not None:
            partners[i] = index_of[found[1]]
    for i, j in partners.items():
        if partners.get(j) != i:
            names = skeleton.joint_names
            raise ValueError(
                f"skeleton {skeleton.name!r}: joint names do not pair up one to one: {names[i]!r} pairs with "
                f"{names[j]!r}, but {names[j]!r} pairs with "
                f"{names[partners[j]] if j in partners else 'nothing'!r}"
            )
    return partners


def _compute_permutation(skeleton: Skeleton) -> tuple[int, ...]:
    names = skeleton.joint_names
    pairs = _chain_pairs(skeleton)
    if not pairs:
        raise ValueError(
            f"skeleton {skeleton.name!r} cannot be mirrored: mirroring needs left/right chains named with side "
            f"markers (e.g. 'left_arm' and 'right_arm', 'LeftLeg' and 'RightLeg'), and its chains are "
            f"{list(skeleton.chains)}"
        )
    mirror: dict[int, int] = {}
    source: dict[int, str] = {}  # which chain pair decided a joint's partner, for the error messages

    def assign(a: int, b: int, why: str) -> None:
        for joint, partner in ((a, b), (b, a)):
            if mirror.get(joint, partner) != partner:
                raise ValueError(
                    f"skeleton {skeleton.name!r}: mirroring is not a one-to-one swap: joint {names[joint]!r} "
                    f"pairs with {names[mirror[joint]]!r} ({source[joint]}) and with {names[partner]!r} ({why})"
                )
            mirror[joint], source[joint] = partner, why

    for left, right in pairs:
        left_chain, right_chain = skeleton.chains[left], skeleton.chains[right]
        if len(left_chain) != len(right_chain):
            raise ValueError(
                f"skeleton {skeleton.name!r}: chains {left!r} ({len(left_chain)} joints) and {right!r} "
                f"({len(right_chain)} joints) have different lengths, so their joints cannot be paired for mirroring"
            )
        for position, (a, b) in enumerate(zip(left_chain, right_chain)):
            assign(a, b, f"position {position} of chains {left!r} and {right!r}")

    by_name = _name_partners(skeleton)
    for joint, partner in mirror.items():
        # joints named without a side ("spine3", "j7") take the chains' word; a named side must agree with it
        if joint in by_name and by_name[joint] != partner:
            raise ValueError(
                f"skeleton {skeleton.name!r}: the chains pair joint {names[joint]!r} with {names[partner]!r} "
                f"({source[joint]}), but its name pairs it with {names[by_name[joint]]!r}"
            )
    for joint, partner in by_name.items():
        mirror.setdefault(joint, partner)
    return tuple(mirror.get(joint, joint) for joint in range(skeleton.num_joints))


_PERMUTATIONS: dict[tuple, tuple[int, ...]] = {}


def mirror_permutation(skeleton) -> tuple[int, ...]:
    """`permutation[j]` is the joint that takes joint j's place in the mirrored motion (its left/right partner,
    or j itself for centre joints and joints without a partner); applying it twice gives the identity.

    `skeleton` is a `Skeleton`, a preset name, a JSON path or a dict. Raises ValueError when the skeleton has
    no left/right chain pair, when paired chains differ in length, or when chains and names disagree.
    """
    skeleton = resolve_skeleton(skeleton)
    # Skeleton is frozen but holds a dict, so it is not hashable; key on its contents instead
    key = (skeleton.name, skeleton.joint_names, tuple(skeleton.chains.items()))
    if key not in _PERMUTATIONS:
        if len(_PERMUTATIONS) > 64:
            _PERMUTATIONS.clear()
        _PERMUTATIONS[key] = _compute_permutation(skeleton)
    return _PERMUTATIONS[key]


def mirror_motion(motion, skeleton, lateral_axis: int = 0) -> np.ndarray:
    """The motion performed with the other side of the body: a new array with the joints swapped with their
    mirror partners and the lateral coordinate negated (the reflection is across the plane lateral = 0).

    `motion` is `(frames, joints, 3)` or, for several persons, `(frames, persons, joints, 3)`; every person
    is mirrored in place (the persons keep their order). `lateral_axis` is the left-right axis (x in the
    HumanML3D convention, where the SMPL left side points towards +x).
    """
    skeleton = resolve_skeleton(skeleton)
    motion = np.asarray(motion)
    if motion.ndim not in (3, 4) or motion.shape[-1] != 3:
        raise ValueError(
            f"mirror_motion expects joint positions (frames, joints, 3) or (frames, persons, joints, 3), got shape "
            f"{motion.shape}"
        )
    if motion.shape[-2] != skeleton.num_joints:
        raise ValueError(
            f"mirror_motion: the motion has {motion.shape[-2]} joints but skeleton {skeleton.name!r} has "
            f"{skeleton.num_joints}; {skeleton_hint(motion.shape[-2])}"
        )
    if lateral_axis not in (0, 1, 2):
        raise ValueError(f"lateral_axis must be 0, 1 or 2 (a coordinate of the last axis), got {lateral_axis!r}")
    mirrored = motion[..., list(mirror_permutation(skeleton)), :]  # fancy indexing: always a new array
    mirrored[..., lateral_axis] = -mirrored[..., lateral_axis]
    return mirrored


# --- captions ------------------------------------------------------------------------------------

# longest first, so "counter-clockwise" is one word and not "counter-" + "clockwise"
_SIDE_WORD = re.compile(
    r"\b(counter[- ]?clockwise|anti[- ]?clockwise|clockwise|leftwards?|rightwards?|left|right)\b", re.IGNORECASE
)


def _side_of(word: str) -> str:
    """The normalised side of a matched side word: left, right, clockwise or counterclockwise."""
    word = word.lower()
    if word.startswith(("counter", "anti")):
        return "counterclockwise"
    if word == "clockwise":
        return "clockwise"
    return "left" if word.startswith("left") else "right"


def _swap_word(match: re.Match) -> str:
    word = match.group(0)
    lowered = word.lower()
    if lowered.startswith(("left", "right")):
        # keep "ward" / "wards": leftwards -> rightwards
        swapped = ("right" if lowered.startswith("left") else "left") + lowered[len(_side_of(lowered)) :]
    else:
        swapped = "counterclockwise" if _side_of(lowered) == "clockwise" else "clockwise"
    return _same_case(swapped, word)


def mirror_caption(text: str) -> str:
    """The caption of the mirrored motion: left <-> right (also in "leftward(s)", "left-handed", "left,"),
    clockwise <-> counterclockwise (also written "counter-clockwise", "anticlockwise", "anti-clockwise", which
    all become "clockwise"), whole words only ("bright" and "leftover" stay) and keeping the capitalisation
    (Left -> Right, LEFT -> RIGHT). A caption without a side word is returned as it is (the same string).

    Known limitation: "left" as a verb ("he left the room") is swapped too, as in HumanML3D's own mirrored
    captions; motion captions rarely use it.
    """
    if not _SIDE_WORD.search(text):
        return text
    return _SIDE_WORD.sub(_swap_word, text)


def side_words(text: str) -> tuple[str, ...]:
    """The caption's side words in order, each normalised to "left", "right", "clockwise" or
    "counterclockwise" ("Leftwards" -> "left", "anti-clockwise" -> "counterclockwise"): captions whose side
    words differ describe different (mirrored) motions, however similar the rest of their text."""
    return tuple(_side_of(match.group(0)) for match in _SIDE_WORD.finditer(text))
