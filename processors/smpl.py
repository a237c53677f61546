"""SMPL-family parameter files (AMASS: SMPL-H and SMPL-X `.npz`) -> joint positions `(T, J, 3)`, metres, Y up.

A file holds `poses` (T, 156) for SMPL-H (52 joints: root, 21 body, 15 per hand) or (T, 165) for SMPL-X
(55: root, 21 body, jaw, two eyes, 15 per hand), axis-angle per joint in the model's joint order, `trans`
(T, 3), `betas`, `gender` and the capture rate (`mocap_framerate`, or `mocap_frame_rate` in SMPL-X
releases). The poses are used as stored, without adding a mean hand pose, as AMASS and HumanML3D do.

Body models are licensed separately and never downloaded: the user points `body_model_dir` at them, in
AMASS's / HumanML3D's layout `<dir>/smplh/<gender>/model.npz`, `<dir>/smplx/<gender>/model.npz`, or
smplx's `<dir>/smplh/SMPLH_<GENDER>.npz`, `<dir>/smplx/SMPLX_<GENDER>.npz`; `<dir>` may also be the
`smplh` / `smplx` folder itself. Without a model of the file's gender (or a gender in the file) the neutral one is
used, and the log says so. Models are read with `allow_pickle=False`, taking only the numeric arrays the joints need, so a
`.pkl` model or a key stored as a pickled object (e.g. a sparse joint regressor) is refused.

Joints come from the `smplx` package's own functions: the rest joints are the regressor applied to the
shaped template (`vertices2joints`, `blend_shapes`) and the posed joints its rigid transform of them
(`batch_rodrigues`, `batch_rigid_transform`), plus `trans`. Joints depend only on shape and pose, so no
vertex is posed. Betas: as many as the file and the model both have (SMPL-X models hold 300 shape
directions, or 10 in the 10 + 10 layout with expressions, as smplx reads them). AMASS's Z-up world is
turned Y-up with HumanML3D's own conversion, (x, y, z) -> (-x, z, y) (a proper rotation).

Joint sets (`MotionFileOptions.smpl_joints`): "humanml3d", the first 22 (SMPL's body joints, HumanML3D's
order); "smpl24", those plus a stand-in for SMPL's two hand joints, which SMPL-H and SMPL-X replace with
fingers: the base of each middle finger (`left_middle1`, `right_middle1`), which lies where SMPL's hand
joint does, a few centimetres past the wrist; "smplx", all 55 joints of an SMPL-X file.

Shipped with saved checkpoints as remote code: `torch` and `smplx` are imported only when such a file is
read (the `smpl` extra: pip install 'motionpatches[smpl]').
"""

import functools
import os
import zipfile
from typing import NamedTuple

import numpy as np
from transformers.utils import logging

from .motion_files import MotionFile, MotionFileError, check_fps

logger = logging.get_logger(__name__)

INSTALL_HINT = "pip install 'motionpatches[smpl]'"
# poses width -> (model kind, joints)
MODEL_KINDS = {156: ("smplh", 52), 165: ("smplx", 55)}
MODEL_JOINTS = dict(MODEL_KINDS.values())
MODEL_NAMES = {"smplh": "SMPL-H", "smplx": "SMPL-X"}
GENDERS = ("male", "female", "neutral")
# left_middle1 and right_middle1 in each model's joint order (hands follow the body, 15 joints each)
HAND_STAND_INS = {"smplh": (25, 40), "smplx": (28, 43)}
NUM_BODY_JOINTS = 22
# AMASS Z up -> Y up as HumanML3D's raw_pose_processing: positions @ [[1,0,0],[0,0,1],[0,1,0]], then x *= -1
Z_UP_TO_Y_UP = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
FRAMES_PER_CHUNK = 4096  # bounds the (frames, joints, 4, 4) transforms of long captures


class SmplParameters(NamedTuple):
    kind: str  # "smplh" or "smplx"
    poses: np.ndarray  # (T, joints, 3) axis-angle
    trans: np.ndarray  # (T, 3)
    betas: np.ndarray  # (B,)
    gender: str
    fps: float | None


class BodyModel(NamedTuple):
    path: str
    joint_template: object  # torch (J, 3): the regressor applied to the template
    joint_shapedirs: object  # torch (J, 3, S): the regressor applied to each shape direction
    parents: object  # torch long (J,)


# ------------------------------------------------------------------------------------------- the file


def read_smpl_file(path: str, body_model_dir, smpl_joints: str = "humanml3d") -> MotionFile:
    """Joint positions `(T, J, 3)` float32 (metres, Y up) and the capture rate of an AMASS-layout `.npz`."""
    params = read_smpl_parameters(path)
    check_joint_set(path, params.kind, smpl_joints)
    torch, lbs = import_smplx(path)
    model = load_body_model(find_body_model(path, body_model_dir, params.kind, params.gender), params.kind)
    positions = posed_joints(params, model, torch, lbs) @ Z_UP_TO_Y_UP.T
    return MotionFile(select_joints(positions, params.kind, smpl_joints).astype(np.float32), params.fps, None)


def read_smpl_parameters(path: str) -> SmplParameters:
    """The parameters of an AMASS-layout `.npz`, checked; a `MotionFileError` says what is wrong."""
    with _open_npz(path) as data:
        poses = _numeric(path, data, "poses")
        kind = _model_kind(path, data, poses)
        trans = _numeric(path, data, "trans")
        betas = _numeric(path, data, "betas")
        gender = _gender(path, data)
        fps = _frame_rate(path, data)
    frames = len(poses)
    if trans.shape != (frames, 3):
        raise MotionFileError(path, f"{path}: trans has shape {trans.shape}, expected ({frames}, 3)", "bad SMPL file")
    if betas.ndim == 2 and len(betas) == 1:
        betas = betas[0]
    if betas.ndim != 1:
        raise MotionFileError(path, f"{path}: betas has shape {betas.shape}, expected (num_betas,)", "bad SMPL file")
    return SmplParameters(kind, poses.reshape(frames, -1, 3), trans, betas, gender, fps)


def _open_npz(path: str):
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise MotionFileError(
            path, f"{path} is not a readable .npz archive of SMPL parameters ({err})", "unsupported .npz"
        ) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise MotionFileError(
            path, f"{path} is a single .npy array, not a .npz archive of SMPL parameters", "unsupported .npz"
        )
    return data


def _stored(path: str, data, key: str, what: str = "SMPL parameters") -> np.ndarray:
    if key not in data.files:
        raise MotionFileError(
            path, f"{path} has no {key!r} array (it holds {sorted(data.files)}); {what} need it", "bad SMPL file"
        )
    try:
        return data[key]
    except ValueError as err:
        if "allow_pickle" in str(err):  # numpy refuses object arrays before unpickling anything
            raise MotionFileError(
                path, f"{path}: {key!r} is stored as pickled Python objects, which are never loaded", "pickled object"
            ) from None
        raise MotionFileError(path, f"{path}: {key!r} cannot be read ({err})", "bad SMPL file") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise MotionFileError(
            path, f"{path}: {key!r} cannot be read ({err}); the file is damaged", "bad SMPL file"
        ) from None


def _numeric(path: str, data, key: str, what: str = "SMPL parameters") -> np.ndarray:
    array = _stored(path, data, key, what)
    if array.dtype.kind not in "iuf":
        raise MotionFileError(path, f"{path}: {key!r} holds {array.dtype}, not numbers", "bad SMPL file")
    return array.astype(np.float64)


def _model_kind(path: str, data, poses: np.ndarray) -> str:
    width = poses.shape[1] if poses.ndim == 2 else None
    if width not in MODEL_KINDS:
        raise MotionFileError(
            path,
            f"{path}: .npz motions with poses of shape {poses.shape} are not read yet; AMASS SMPL-H files have "
            "(frames, 156) poses and SMPL-X files (frames, 165), which are; otherwise compute the (frames, joints, 3) "
            "joint positions and save them with numpy.save as .npy",
            "unsupported .npz",
        )
    kind = MODEL_KINDS[width][0]
    stated = _text(path, data, "surface_model_type") if "surface_model_type" in data.files else kind
    if stated != kind:
        raise MotionFileError(
            path,
            f"{path}: surface_model_type is {stated!r} but its poses have {width} values per frame, those of {kind}",
            "bad SMPL file",
        )
    return kind


def _text(path: str, data, key: str) -> str:
    value = _stored(path, data, key)
    if value.dtype.kind not in "US" or value.size != 1:
        raise MotionFileError(path, f"{path}: {key!r} is {value.dtype} {value.shape}, not a string", "bad SMPL file")
    value = value.reshape(()).item()
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else value).strip().lower()


def _gender(path: str, data) -> str:
    if "gender" not in data.files:
        logger.warning(f"{path} states no gender; the neutral body model is used")
        return "neutral"
    gender = _text(path, data, "gender")
    if gender not in GENDERS:
        raise MotionFileError(path, f"{path}: gender {gender!r} is not one of {GENDERS}", "bad SMPL file")
    return gender


def _frame_rate(path: str, data) -> float | None:
    """The capture rate; None when the file has none (the caller's rate then applies, as for `.npy`)."""
    key = next((k for k in ("mocap_framerate", "mocap_frame_rate") if k in data.files), None)
    if key is None:
        return None
    rate = _numeric(path, data, key)
    if rate.size != 1:
        raise MotionFileError(path, f"{path}: {key} has shape {rate.shape}, not one number", "bad frame rate")
    try:
        return check_fps(rate.item(), key, path)
    except ValueError as err:
        raise MotionFileError(path, str(err), "bad frame rate") from None


# ------------------------------------------------------------------------------------------- joint sets


def check_joint_set(path: str, kind: str, smpl_joints: str) -> None:
    if smpl_joints == "smplx" and kind != "smplx":
        raise MotionFileError(
            path,
            f"{path} is an {MODEL_NAMES[kind]} file, which has no jaw or eye joints: smpl_joints='smplx' needs SMPL-X "
            "files; use smpl_joints='smpl24' (body + hands) or 'humanml3d' (22 body joints)",
            "wrong joint set",
        )


def select_joints(positions: np.ndarray, kind: str, smpl_joints: str) -> np.ndarray:
    if smpl_joints == "smplx":
        return positions
    if smpl_joints == "smpl24":
        return positions[:, [*range(NUM_BODY_JOINTS), *HAND_STAND_INS[kind]]]
    return positions[:, :NUM_BODY_JOINTS]


# ------------------------------------------------------------------------------------------- body models


def import_smplx(path: str):
    """(torch, smplx.lbs), or a `MotionFileError` naming the extra to install."""
    try:
        import torch
        from smplx import lbs
    except ImportError as err:
        raise MotionFileError(
            path,
            f"{path}: SMPL parameter files are turned into joints with the smplx package, which is not installed "
            f"({err}); install it with: {INSTALL_HINT}",
            "smplx not installed",
        ) from None
    return torch, lbs


def model_candidates(body_model_dir: str, kind: str, gender: str) -> list[str]:
    """Where a model may be, in order: the AMASS layout, smplx's, each under `<dir>/<kind>` or `<dir>` itself."""
    names = (os.path.join(gender, "model"), f"{kind.upper()}_{gender.upper()}")
    return [os.path.join(root, name) for root in (os.path.join(body_model_dir, kind), body_model_dir) for name in names]


def find_body_model(path: str, body_model_dir, kind: str, gender: str) -> str:
    """The `.npz` body model for a file of `kind` and `gender`; the neutral one, logged, when that is missing."""
    if body_model_dir is None:
        raise MotionFileError(
            path,
            f"{path} holds {MODEL_NAMES[kind]} parameters, which need the body model files to become joints: pass "
            "MotionFileOptions(body_model_dir=...), the folder holding smplh/ and smplx/ models (downloaded from their "
            "websites under their licences; never fetched by this package)",
            "no body models",
        )
    body_model_dir = os.fspath(body_model_dir)
    for candidate_gender in dict.fromkeys((gender, "neutral")):
        for stem in model_candidates(body_model_dir, kind, candidate_gender):
            if os.path.isfile(stem + ".npz"):
                if candidate_gender != gender:
                    logger.warning(
                        f"{path}: no {gender} {MODEL_NAMES[kind]} model under {body_model_dir}; using the neutral one, "
                        f"{stem}.npz"
                    )
                return stem + ".npz"
            if os.path.isfile(stem + ".pkl"):
                raise _pickled_model(path, stem + ".pkl", kind)
    looked = ", ".join(stem + ".npz" for stem in model_candidates(body_model_dir, kind, gender))
    raise MotionFileError(
        path,
        f"{path} needs a {gender} (or neutral) {MODEL_NAMES[kind]} body model; none found under {body_model_dir} "
        f"(looked for {looked})",
        "no body models",
    )


def _pickled_model(path: str, model_path: str, kind: str) -> MotionFileError:
    return MotionFileError(
        path,
        f"{path} needs a {MODEL_NAMES[kind]} body model; {model_path} is a pickled model, which is never loaded: use "
        f"the model's .npz release (e.g. AMASS's {kind}/<gender>/model.npz or smplx's {kind.upper()}_<GENDER>.npz)",
        "pickled body model",
    )


def load_body_model(model_path: str, kind: str) -> BodyModel:
    """The joint-space model of a body-model `.npz`, cached while the file is unchanged."""
    stat = os.stat(model_path)
    return _load_body_model(model_path, kind, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _load_body_model(model_path: str, kind: str, mtime_ns: int, size: int) -> BodyModel:
    torch, lbs = import_smplx(model_path)
    arrays = _model_arrays(model_path, kind)
    regressor = torch.from_numpy(arrays["J_regressor"])
    shapedirs = torch.from_numpy(arrays["shapedirs"][:, :, : _shape_columns(kind, arrays["shapedirs"])])
    # joints are linear in the shaped vertices: regress the template and each shape direction once per model
    joint_template = lbs.vertices2joints(regressor, torch.from_numpy(arrays["v_template"])[None])[0]
    joint_shapedirs = lbs.vertices2joints(regressor, shapedirs.permute(2, 0, 1)).permute(1, 2, 0)
    parents = torch.from_numpy(arrays["parents"])
    return BodyModel(model_path, joint_template, joint_shapedirs.contiguous(), parents)


def _shape_columns(kind: str, shapedirs: np.ndarray) -> int:
    if kind == "smplx":  # smplx's reading: 300 shape + 100 expression directions, or the older 10 + 10
        return 300 if shapedirs.shape[-1] >= 400 else min(10, shapedirs.shape[-1])
    return shapedirs.shape[-1]


def _model_arrays(model_path: str, kind: str) -> dict:
    what = f"{MODEL_NAMES[kind]} body models"
    with _open_model(model_path, kind) as data:
        arrays = {
            key: _model_numeric(model_path, data, key, what) for key in ("v_template", "shapedirs", "J_regressor")
        }
        kintree = _model_numeric(model_path, data, "kintree_table", what)
    arrays["parents"] = _parents(model_path, kintree, MODEL_JOINTS[kind], kind)
    _check_model_shapes(model_path, arrays)
    return arrays


def _open_model(model_path: str, kind: str):
    try:
        data = np.load(model_path, allow_pickle=False)
    except ValueError:  # a pickle under a .npz name
        raise _pickled_model(model_path, model_path, kind) from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise MotionFileError(
            model_path, f"{model_path} is not a readable body-model .npz ({err})", "bad body model"
        ) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise MotionFileError(model_path, f"{model_path} is a single array, not a body-model .npz", "bad body model")
    return data


def _model_numeric(model_path: str, data, key: str, what: str) -> np.ndarray:
    try:
        return _numeric(model_path, data, key, what)
    except MotionFileError as err:
        if err.reason != "pickled object":
            raise
        raise MotionFileError(
            model_path,
            f"{model_path}: {key!r} is stored as a pickled Python object (e.g. a sparse matrix), which is never "
            "loaded; use the body model's .npz release, whose arrays are plain numbers",
            "pickled body model",
        ) from None


def _parents(model_path: str, kintree: np.ndarray, expected: int, kind: str) -> np.ndarray:
    if kintree.ndim != 2 or kintree.shape[0] != 2 or kintree.shape[1] != expected:
        raise MotionFileError(
            model_path,
            f"{model_path}: kintree_table has shape {kintree.shape}; an {MODEL_NAMES[kind]} model has (2, {expected}) "
            f"for its {expected} joints (is it a model of another kind?)",
            "bad body model",
        )
    parents = kintree[0].astype(np.int64)
    parents[0] = -1  # stored as the largest uint32
    bad = [j for j in range(1, expected) if not 0 <= parents[j] < j]
    if bad:
        raise MotionFileError(
            model_path, f"{model_path}: joint {bad[0]}'s parent {parents[bad[0]]} does not precede it", "bad body model"
        )
    return parents


def _check_model_shapes(model_path: str, arrays: dict) -> None:
    vertices = arrays["v_template"].shape[0]
    joints = len(arrays["parents"])
    expected = {"v_template": (vertices, 3), "J_regressor": (joints, vertices)}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise MotionFileError(
                model_path, f"{model_path}: {key} has shape {arrays[key].shape}, expected {shape}", "bad body model"
            )
    if arrays["shapedirs"].ndim != 3 or arrays["shapedirs"].shape[:2] != (vertices, 3):
        raise MotionFileError(
            model_path,
            f"{model_path}: shapedirs has shape {arrays['shapedirs'].shape}, expected ({vertices}, 3, directions)",
            "bad body model",
        )


# ------------------------------------------------------------------------------------------- posing


def posed_joints(params: SmplParameters, model: BodyModel, torch, lbs) -> np.ndarray:
    """`(T, J, 3)` float64 joint positions in the file's (Z-up) world."""
    count = min(len(params.betas), model.joint_shapedirs.shape[-1])
    betas = torch.from_numpy(params.betas[None, :count])
    rest = model.joint_template + lbs.blend_shapes(betas, model.joint_shapedirs[..., :count])[0]
    chunks = []
    for start in range(0, len(params.poses), FRAMES_PER_CHUNK):
        poses = torch.from_numpy(params.poses[start : start + FRAMES_PER_CHUNK])
        frames, joints = poses.shape[:2]
        rotations = lbs.batch_rodrigues(poses.reshape(-1, 3)).reshape(frames, joints, 3, 3)
        posed, _ = lbs.batch_rigid_transform(rotations, rest.expand(frames, -1, -1), model.parents, dtype=torch.float64)
        chunks.append(posed.numpy())
    positions = np.concatenate(chunks) if chunks else np.zeros((0, len(model.parents), 3))
    return positions + params.trans[:, None]
