"""Synthetic SMPL-H / SMPL-X body models and AMASS parameter files, and the joints our own forward kinematics
gives for them: the real models are licensed and never in the repository.

Needs smplx (its published joint names give the kinematic tree): import this module after
`pytest.importorskip("smplx")`.
"""

import numpy as np
from smplx.joint_names import JOINT_NAMES, SMPLH_JOINT_NAMES

from motionpatches.processors.kinematics import forward_kinematics

# SMPL's 22 body joints (pelvis, hips, spine, knees, ..., wrists), from the published topology
BODY_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
KINDS = {"smplh": (SMPLH_JOINT_NAMES[:52], 156, 16), "smplx": (JOINT_NAMES[:55], 165, 20)}
VERTICES = 40
Y_UP = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # (x, y, z) -> (-x, z, y), written out


def parents_from_names(names) -> list[int]:
    """The kinematic tree of smplx's joint order: body as published, each finger joint k under k-1 and the
    first under its wrist, jaw and eyes under the head."""
    index = {name: i for i, name in enumerate(names)}
    parents = []
    for i, name in enumerate(names):
        if i < len(BODY_PARENTS):
            parents.append(BODY_PARENTS[i])
        elif name in ("jaw", "left_eye_smplhf", "right_eye_smplhf"):
            parents.append(index["head"])
        elif name[-1] != "1":
            parents.append(index[name[:-1] + str(int(name[-1]) - 1)])
        else:
            parents.append(index[name.split("_")[0] + "_wrist"])
    return parents


def body_model_arrays(kind: str, seed: int = 0) -> dict:
    """A tiny model in the release's .npz layout: template, shape and pose blend shapes, regressor, skinning
    weights, the real kinematic tree (root's parent stored as the largest uint32), faces and a string key."""
    names, _, directions = KINDS[kind]
    rng = np.random.default_rng(seed)
    joints = len(names)
    regressor = rng.uniform(size=(joints, VERTICES)) ** 4  # convex combinations, like the real regressors
    weights = rng.uniform(size=(VERTICES, joints))
    kintree = np.array([parents_from_names(names), range(joints)], dtype=np.int64).astype(np.uint32)
    return {
        "v_template": rng.normal(scale=0.5, size=(VERTICES, 3)),
        "shapedirs": rng.normal(scale=0.05, size=(VERTICES, 3, directions)),
        "posedirs": rng.normal(scale=0.01, size=(VERTICES, 3, (joints - 1) * 9)),
        "J_regressor": regressor / regressor.sum(axis=1, keepdims=True),
        "weights": weights / weights.sum(axis=1, keepdims=True),
        "kintree_table": kintree,
        "f": rng.integers(0, VERTICES, size=(30, 3)).astype(np.uint32),
        "bs_style": np.array("lbs"),
    }


def write_body_model(path, kind: str, seed: int = 0, **replace) -> dict:
    arrays = {**body_model_arrays(kind, seed), **replace}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def amass_arrays(kind: str, frames: int = 37, seed: int = 1, betas: int = 16, fps: float = 120.0) -> dict:
    """An AMASS file's arrays: SMPL-H with `mocap_framerate`, SMPL-X with `mocap_frame_rate` and its type."""
    rng = np.random.default_rng(seed)
    width = KINDS[kind][1]
    arrays = {
        "poses": rng.normal(scale=0.4, size=(frames, width)),
        "trans": np.cumsum(rng.normal(scale=0.02, size=(frames, 3)), axis=0) + [0.3, -0.2, 0.9],
        "betas": rng.normal(size=betas),
        "gender": np.array("female"),
    }
    if kind == "smplx":
        arrays.update(mocap_frame_rate=np.array(fps), surface_model_type=np.array("smplx"), num_betas=np.array(betas))
    else:
        arrays.update(mocap_framerate=np.array(fps), dmpls=rng.normal(size=(frames, 8)))
    return arrays


def write_amass(path, kind: str, **kwargs) -> dict:
    arrays = amass_arrays(kind, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def rodrigues(axis_angles: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotations, R = I + sin(a) K + (1 - cos(a)) K^2."""
    angle = np.linalg.norm(axis_angles, axis=-1, keepdims=True)
    x, y, z = np.moveaxis(axis_angles / np.maximum(angle, 1e-12), -1, 0)
    zero = np.zeros_like(x)
    skew = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*x.shape, 3, 3)
    angle = angle[..., None]
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def shape_directions(kind: str, model: dict) -> int:
    """SMPL-H: every direction; SMPL-X: 300 of a 300 + 100 model, 10 of the older 10 + 10 (as smplx reads them)."""
    columns = model["shapedirs"].shape[-1]
    if kind == "smplh":
        return columns
    return 300 if columns >= 400 else 10


def expected_joints(kind: str, model: dict, amass: dict) -> np.ndarray:
    """Every joint, Y up, by our own forward kinematics: rest joints regressed from the shaped template."""
    count = min(len(amass["betas"]), shape_directions(kind, model))
    shaped = model["v_template"] + model["shapedirs"][:, :, :count] @ amass["betas"][:count]
    rest = model["J_regressor"] @ shaped
    parents = parents_from_names(KINDS[kind][0])
    frames = len(amass["poses"])
    offsets = np.repeat((rest - rest[np.maximum(parents, 0)])[:, None], frames, axis=1)
    offsets[0] = rest[0] + amass["trans"]  # the root turns about itself
    rotations = rodrigues(amass["poses"].reshape(frames, -1, 3)).transpose(1, 0, 2, 3)
    return forward_kinematics(parents, rotations, offsets) @ Y_UP.T


def write_female_models(root) -> dict:
    """Female SMPL-H and SMPL-X models in AMASS's layout (`<root>/<kind>/female/model.npz`); {kind: arrays}."""
    return {kind: write_body_model(root / kind / "female" / "model.npz", kind) for kind in KINDS}


def smpl24_columns(kind: str) -> list[int]:
    """The columns of `expected_joints` an `smpl24` reading keeps: the 22 body joints, then each middle finger's
    base (where SMPL's hand joints sit), looked up by name."""
    names = KINDS[kind][0]
    return [*range(22), names.index("left_middle1"), names.index("right_middle1")]
