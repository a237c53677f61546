"""AMASS-layout SMPL-H / SMPL-X parameter files -> joints, through smplx, with a tiny synthetic body model built
here (the real models are licensed and never in the repository), checked against our own forward kinematics."""

import io
import logging
import sys
import zipfile

import numpy as np
import pytest

from motionpatches import MotionFileError, MotionFileOptions, MotionPatchFeatureExtractor, read_motion_file

pytest.importorskip("smplx", reason="the smpl extra (pip install 'motionpatches[smpl]') is in dev")
from smpl_samples import (  # noqa: E402
    KINDS,
    Y_UP,
    amass_arrays,
    body_model_arrays,
    expected_joints,
    write_amass,
    write_body_model,
    write_female_models,
)
from smplx.joint_names import JOINT_NAMES  # noqa: E402


@pytest.fixture
def models(tmp_path):
    """Female SMPL-H and SMPL-X models in AMASS's layout (`<dir>/<kind>/<gender>/model.npz`)."""
    root = tmp_path / "body_models"
    return root, write_female_models(root)


def options(root, **kwargs) -> MotionFileOptions:
    return MotionFileOptions(body_model_dir=str(root), **kwargs)


def test_joint_names_are_where_the_reader_takes_them():
    from motionpatches import SKELETON_PRESETS
    from motionpatches.processors.smpl import HAND_STAND_INS

    for kind, (names, width, _) in KINDS.items():
        assert len(names) * 3 == width
        assert [names[i] for i in HAND_STAND_INS[kind]] == ["left_middle1", "right_middle1"]
        assert tuple(names[:22]) == SKELETON_PRESETS["humanml3d"].joint_names
    assert tuple(JOINT_NAMES[:55]) == SKELETON_PRESETS["smplx"].joint_names


@pytest.mark.parametrize("kind", ["smplh", "smplx"])
def test_joints_match_our_forward_kinematics(tmp_path, models, kind):
    root, arrays = models
    amass = write_amass(tmp_path / "take.npz", kind)
    expected = expected_joints(kind, arrays[kind], amass)
    read = read_motion_file(tmp_path / "take.npz", options(root, smpl_joints="smplx" if kind == "smplx" else "smpl24"))
    assert read.fps == 120.0 and read.values.dtype == np.float32
    if kind == "smplx":
        np.testing.assert_allclose(read.values, expected, atol=1e-5, rtol=0)
    else:
        np.testing.assert_allclose(read.values, expected[:, [*range(22), 25, 40]], atol=1e-5, rtol=0)
    # pose blend shapes and skinning move vertices, not joints; the joints do move with the pose
    assert np.abs(np.diff(read.values, axis=0)).max() > 0.01


@pytest.mark.parametrize("kind, betas", [("smplh", 10), ("smplx", 16)])
def test_betas_are_those_the_file_and_the_model_both_have(tmp_path, models, kind, betas):
    """SMPL-H model with 16 directions and a file with 10 betas; a 10 + 10 SMPL-X model and a file with 16:
    10 either way (using the SMPL-X model's expression directions as shape would move the joints)."""
    root, arrays = models
    amass = write_amass(tmp_path / "take.npz", kind, betas=betas)
    read = read_motion_file(tmp_path / "take.npz", options(root))
    expected = expected_joints(kind, arrays[kind], amass)[:, :22]
    np.testing.assert_allclose(read.values, expected, atol=1e-5, rtol=0)
    if kind == "smplx":
        everything = arrays[kind]["shapedirs"][:, :, :16] @ amass["betas"]
        wrong = arrays[kind]["J_regressor"] @ (arrays[kind]["v_template"] + everything)
        right = arrays[kind]["J_regressor"] @ (
            arrays[kind]["v_template"] + arrays[kind]["shapedirs"][:, :, :10] @ amass["betas"][:10]
        )
        assert np.abs(wrong - right).max() > 1e-3


def test_z_up_becomes_y_up_as_humanml3d_converts(tmp_path, models):
    """A rest pose moved 1 m up AMASS's Z rises 1 m in Y; 1 m along +X goes to -X; a proper rotation."""
    root, arrays = models
    base = amass_arrays("smplh", frames=3)
    base["poses"][:] = 0.0
    base["trans"][:] = 0.0
    base["trans"][1] = [0.0, 0.0, 1.0]
    base["trans"][2] = [1.0, 0.0, 0.0]
    np.savez(tmp_path / "rest.npz", **base)
    joints = read_motion_file(tmp_path / "rest.npz", options(root)).values
    np.testing.assert_allclose(joints[1] - joints[0], np.tile([0.0, 1.0, 0.0], (22, 1)), atol=1e-6)
    np.testing.assert_allclose(joints[2] - joints[0], np.tile([-1.0, 0.0, 0.0], (22, 1)), atol=1e-6)
    shaped = arrays["smplh"]["v_template"] + arrays["smplh"]["shapedirs"] @ base["betas"]
    rest = arrays["smplh"]["J_regressor"] @ shaped
    np.testing.assert_allclose(joints[0], np.stack([-rest[:22, 0], rest[:22, 2], rest[:22, 1]], axis=1), atol=1e-5)
    assert np.isclose(np.linalg.det(Y_UP), 1.0)


def test_joint_sets_and_frame_rates(tmp_path, models):
    root, arrays = models
    smplh = write_amass(tmp_path / "h.npz", "smplh", fps=120.0)
    smplx = write_amass(tmp_path / "x.npz", "smplx", fps=30.0)
    expected = {
        "h": expected_joints("smplh", arrays["smplh"], smplh),
        "x": expected_joints("smplx", arrays["smplx"], smplx),
    }
    for name, fps, sets in (
        ("h", 120.0, {"humanml3d": 22, "smpl24": 24}),
        ("x", 30.0, {"humanml3d": 22, "smpl24": 24, "smplx": 55}),
    ):
        for joint_set, count in sets.items():
            read = read_motion_file(tmp_path / f"{name}.npz", options(root, smpl_joints=joint_set))
            assert read.values.shape == (37, count, 3) and read.fps == fps
    hands = read_motion_file(tmp_path / "x.npz", options(root, smpl_joints="smpl24")).values[:, 22:]
    np.testing.assert_allclose(hands, expected["x"][:, [28, 43]], atol=1e-5, rtol=0)
    with pytest.raises(MotionFileError, match=r"h\.npz is an SMPL-H file, which has no jaw or eye joints.*'smpl24'"):
        read_motion_file(tmp_path / "h.npz", options(root, smpl_joints="smplx"))


@pytest.mark.parametrize("skeleton, joints", [("humanml3d", 22), ("smpl24", 24), ("smplx", 55)])
def test_processor_reads_amass_files_at_their_rate_in_the_skeletons_joint_set(tmp_path, models, skeleton, joints):
    """A default smpl_joints follows the extractor's skeleton preset; the file's 120 fps reach 20 fps."""
    root, arrays = models
    amass = write_amass(tmp_path / "take.npz", "smplx", fps=120.0)
    every = expected_joints("smplx", arrays["smplx"], amass)
    positions = {22: every[:, :22], 24: every[:, [*range(22), 28, 43]], 55: every}[joints].astype(np.float32)
    extractor = MotionPatchFeatureExtractor(skeleton=skeleton)
    out = extractor([str(tmp_path / "take.npz")], return_motion_lengths=True, file_options=options(root))
    expected = extractor([positions], motion_fps=120.0, return_motion_lengths=True)
    assert out["motion_lengths"].tolist() == expected["motion_lengths"].tolist() == [7]  # 36 / 6 + 1 frames
    np.testing.assert_allclose(out["motion_values"], expected["motion_values"], atol=1e-5, rtol=0)
    mean, _ = extractor.fit_statistics([str(tmp_path / "take.npz")], file_options=options(root))
    np.testing.assert_allclose(mean, positions.mean(axis=0), atol=1e-5)


def test_processor_call_passes_file_options(tmp_path, models, tokenizer):
    from motionpatches import MotionPatchProcessor

    root, arrays = models
    amass = write_amass(tmp_path / "take.npz", "smplh", fps=60.0)
    processor = MotionPatchProcessor(tokenizer=tokenizer, skeleton="humanml3d")
    out = processor(text=["a person walks"], motions=[str(tmp_path / "take.npz")], file_options=options(root))
    positions = expected_joints("smplh", arrays["smplh"], amass)[:, :22].astype(np.float32)
    expected = processor(motions=[positions], motion_fps=60.0)
    np.testing.assert_allclose(out["motion_values"], expected["motion_values"], atol=1e-5, rtol=0)
    with pytest.raises(MotionFileError, match="body_model_dir"):
        processor(motions=[str(tmp_path / "take.npz")])
    assert "body_model_dir" not in processor.to_json_string()  # per call, never saved


@pytest.mark.parametrize(
    "layout",
    [
        "smplh/female/model.npz",  # AMASS / HumanML3D
        "smplh/SMPLH_FEMALE.npz",  # smplx
        "female/model.npz",  # <dir> is the smplh folder itself
        "SMPLH_FEMALE.npz",
    ],
)
def test_body_model_layouts(tmp_path, layout):
    arrays = write_body_model(tmp_path / "models" / layout, "smplh")
    amass = write_amass(tmp_path / "take.npz", "smplh")
    read = read_motion_file(tmp_path / "take.npz", options(tmp_path / "models"))
    np.testing.assert_allclose(read.values, expected_joints("smplh", arrays, amass)[:, :22], atol=1e-5, rtol=0)


def test_neutral_model_stands_in_and_says_so(tmp_path, caplog):
    arrays = write_body_model(tmp_path / "models" / "smplx" / "SMPLX_NEUTRAL.npz", "smplx", seed=5)
    amass = write_amass(tmp_path / "take.npz", "smplx")
    with caplog.at_level(logging.WARNING):
        read = read_motion_file(tmp_path / "take.npz", options(tmp_path / "models"))
    np.testing.assert_allclose(read.values, expected_joints("smplx", arrays, amass)[:, :22], atol=1e-5, rtol=0)
    assert "no female SMPL-X model" in caplog.text and "SMPLX_NEUTRAL.npz" in caplog.text
    del amass["gender"]
    np.savez(tmp_path / "no_gender.npz", **amass)
    with caplog.at_level(logging.WARNING):
        read = read_motion_file(tmp_path / "no_gender.npz", options(tmp_path / "models"))
    np.testing.assert_allclose(read.values, expected_joints("smplx", arrays, amass)[:, :22], atol=1e-5, rtol=0)
    assert "no_gender.npz states no gender; the neutral body model is used" in caplog.text


def write_object_npz(path, arrays: dict, object_key: str) -> None:
    """A .npz whose `object_key` member declares Python objects (as a pickled sparse matrix would), written
    without pickling anything: a header saying dtype object, then bytes that are never unpickled."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            if key == object_key:
                np.lib.format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": (1,)})
                buffer.write(b"not a pickle")
            else:
                np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
            archive.writestr(f"{key}.npy", buffer.getvalue())


def test_unusable_body_models_are_refused_with_what_to_do(tmp_path):
    models = tmp_path / "models"
    write_amass(tmp_path / "take.npz", "smplh")
    take = str(tmp_path / "take.npz")
    with pytest.raises(MotionFileError, match=r"no body model|looked for .*smplh/female/model\.npz") as error:
        read_motion_file(take, options(models))
    assert error.value.reason == "no body models"
    with pytest.raises(MotionFileError, match=r"MotionFileOptions\(body_model_dir=\.\.\.\)"):
        read_motion_file(take)

    (models / "smplh").mkdir(parents=True)
    (models / "smplh" / "SMPLH_FEMALE.pkl").write_bytes(b"\x80\x04pickled model")
    with pytest.raises(MotionFileError, match=r"SMPLH_FEMALE\.pkl is a pickled model.*\.npz release"):
        read_motion_file(take, options(models))

    (models / "smplh" / "female").mkdir()
    write_object_npz(models / "smplh" / "female" / "model.npz", body_model_arrays("smplh"), "J_regressor")
    with pytest.raises(MotionFileError, match=r"'J_regressor' is stored as a pickled Python object.*\.npz release"):
        read_motion_file(take, options(models))

    write_body_model(models / "smplh" / "female" / "model.npz", "smplx")  # a model of the other kind
    with pytest.raises(MotionFileError, match=r"kintree_table has shape \(2, 55\); an SMPL-H model has \(2, 52\)"):
        read_motion_file(take, options(models))


def test_unusable_parameter_files_are_refused(tmp_path, models):
    root, _ = models
    bad = {
        "smpl.npz": ({"poses": np.zeros((20, 72))}, r"poses of shape \(20, 72\) are not read yet.*numpy\.save"),
        "no_trans.npz": ({**amass_arrays("smplh"), "trans": np.zeros((5, 3))}, r"trans has shape \(5, 3\)"),
        "gender.npz": ({**amass_arrays("smplh"), "gender": np.array("robot")}, "gender 'robot'"),
        "rate.npz": (
            {**amass_arrays("smplh"), "mocap_framerate": np.array(1e5)},
            "mocap_framerate=100000.0 is outside",
        ),
        "type.npz": (
            {**amass_arrays("smplh"), "surface_model_type": np.array("smplx")},
            "surface_model_type is 'smplx'",
        ),
    }
    for name, (arrays, pattern) in bad.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(MotionFileError, match=pattern) as error:
            read_motion_file(tmp_path / name, options(root))
        assert str(tmp_path / name) in str(error.value)
    write_object_npz(tmp_path / "objects.npz", amass_arrays("smplh"), "betas")
    with pytest.raises(MotionFileError, match="'betas' is stored as pickled Python objects"):
        read_motion_file(tmp_path / "objects.npz", options(root))
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(MotionFileError, match="empty.npz is not a readable .npz archive"):
        read_motion_file(tmp_path / "empty.npz", options(root))


def test_without_smplx_the_error_names_the_extra(tmp_path, models, monkeypatch):
    root, _ = models
    write_amass(tmp_path / "take.npz", "smplh")
    monkeypatch.setitem(sys.modules, "smplx", None)
    with pytest.raises(
        MotionFileError, match=r"smplx package, which is not installed.*pip install 'motionpatches\[smpl\]'"
    ):
        read_motion_file(tmp_path / "take.npz", options(root))
