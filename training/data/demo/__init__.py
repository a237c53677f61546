"""A procedural motion-language dataset that needs no download: for the README demo and the tests.

Real motion-capture corpora (HumanML3D, KIT-ML) cannot be fetched offline or shipped with the repo, yet
training and retrieval need paired motions and sentences. Here a small forward-kinematics body on the
SMPL-22 skeleton performs parametric actions (walk, wave, kick, ...) with left/right, direction, speed
and repetition variants, and each motion gets three captions written from several templates.

The data are built to be *learnable but not trivial*: a retrieval model has to tell the actions apart
and, harder, left from right (a left-hand wave moves the +X arm, a right-hand wave the -X arm, and only
the words "left" / "right" in the captions say which). Per-sample jitter of body size, amplitude, phase,
timing and starting heading keeps two motions of one class from being identical.

Motions follow the HumanML3D `new_joints` convention: joint positions in metres, Y up, the person
starting at the origin facing (roughly) +Z, SMPL left side towards +X, 20 frames per second, the floor
at y = 0. Everything is a deterministic function of the seed.

The package is split by role, imported one way (captions -> actions -> body -> kinematics):
`body` (the skeleton, a random body, posing and placing it on the floor, mirroring), `actions` (time
profiles and the 14 action builders, with their variants) and `captions` (templates and wording).
"""

import datasets
import numpy as np

from .actions import ACTIONS, BUILDERS, sample_variant
from .body import PARENTS, mirror, random_body
from .captions import write_captions

__all__ = ["ACTIONS", "generate_demo_motions", "load_demo_dataset"]


# The `demo_combinations` split: each action below is never trained with these variant values (a right-hand
# wave, a slow squat, ...), while validation and test keep the full mix. A model that has learned the words
# and the motions separately should still match them; one that memorised combinations will not.
HELD_OUT_COMBINATIONS = (
    ("wave", {"side": "right"}),
    ("punch", {"side": "left"}),
    ("kick", {"repetitions": 3}),
    ("squat", {"speed": "slow"}),
    ("walk", {"direction": "backward", "speed": "fast"}),
    ("turn", {"side": "right", "angle": 180}),
    ("side_step", {"side": "left", "speed": "fast"}),
)


def is_held_out(action: str, variant: dict) -> bool:
    """True for an (action, variant) the `demo_combinations` training split never shows."""
    return any(
        action == held_action and all(variant.get(name) == value for name, value in values.items())
        for held_action, values in HELD_OUT_COMBINATIONS
    )


def _make_motion(action, rng, motion_id, hold_out=False):
    body = random_body(rng)
    variant = sample_variant(action, rng)
    while hold_out and is_held_out(action, variant):
        variant = sample_variant(action, rng)
    # builders only know the left-handed take; the right-handed one is its mirror image
    left_handed = {name: "left" if value == "right" else value for name, value in variant.items()}
    motion = BUILDERS[action](rng, left_handed, body).positions(body)
    if left_handed != variant:
        motion = mirror(motion)
    return {
        "id": motion_id,
        "motion": motion.astype(np.float32),
        "captions": write_captions(action, variant, rng),
        "action": action,
        "variant": variant,
    }


def generate_demo_motions(num_motions: int, seed: int, *, first_index: int = 0, hold_out: bool = False) -> list[dict]:
    """`num_motions` captioned motions, every action equally often (give or take one), in shuffled order.

    `seed` fixes the order of actions; each motion's body, variant, jitter and captions come from
    (`seed`, `first_index + i`). Ids are `demo_{first_index + i:06d}`, so several calls can share one
    id space without collisions. `hold_out`: no motion is a `HELD_OUT_COMBINATIONS` variant (drawn again).
    """
    order = np.resize(np.arange(len(ACTIONS)), num_motions)
    np.random.default_rng(seed).shuffle(order)
    return [
        _make_motion(
            ACTIONS[action], np.random.default_rng([seed, first_index + i]), f"demo_{first_index + i:06d}", hold_out
        )
        for i, action in enumerate(order)
    ]


_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "motion": datasets.Array3D(shape=(None, len(PARENTS), 3), dtype="float32"),
        "captions": datasets.List(datasets.Value("string")),
        "action": datasets.Value("string"),
    }
)


def load_demo_dataset(
    num_train: int = 1200, num_validation: int = 150, num_test: int = 150, seed: int = 0, hold_out: bool = False
) -> datasets.DatasetDict:
    """Train / validation / test splits built in memory (nothing is cached to disk or downloaded).

    Each split draws from its own seed derived from `seed`, and ids run on across splits, so no motion
    or id is shared between them. `hold_out=True` gives the `demo_combinations` split: the training split has
    none of the `HELD_OUT_COMBINATIONS`, validation and test are the same as the plain demo's.
    """
    splits, first_index = {}, 0
    for number, (name, size) in enumerate((("train", num_train), ("validation", num_validation), ("test", num_test))):
        split_seed = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
        motions = generate_demo_motions(
            size, split_seed, first_index=first_index, hold_out=hold_out and name == "train"
        )
        first_index += size
        columns = {column: [motion[column] for motion in motions] for column in _FEATURES}
        splits[name] = datasets.Dataset.from_dict(columns, features=_FEATURES)
    return datasets.DatasetDict(splits)
