import logging

import datasets
import numpy as np
import pytest
from bvh_samples import bvh_text

from motionpatches.processors.feature_extraction_motionpatches import resample_frame_rate
from motionpatches.processors.motion_files import MotionFileError
from motionpatches.training.data.catalog import load_named_dataset
from motionpatches.training.data.motion_folder import load_motion_folder


def write_folder(root, ids, motions, texts):
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    for split, names in ids.items():
        (root / f"{split}.txt").write_text("\n".join(names) + "\n")
    for name, motion in motions.items():
        np.save(root / "new_joints" / f"{name}.npy", motion)
    for name, lines in texts.items():
        (root / "texts" / f"{name}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def humanml3d_folder(tmp_path):
    rng = np.random.default_rng(0)
    motions = {
        name: rng.normal(size=(n, 22, 3)).astype(np.float32)
        for name, n in [
            ("000001", 80),
            ("M000001", 80),
            ("000002", 120),
            ("000003", 60),
            ("000005", 50),
            ("000007", 45),
        ]
    }
    motions["000003"][10, 4, 0] = np.nan
    texts = {
        "000001": [
            "a person walks forward#a/DET person/NOUN#0.0#0.0",
            "someone walks ahead#x#nan#nan",
            "then turns around#x#1.0#3.0",
            "and turns#x#1.0#3.0",
        ],
        "M000001": ["a person walks forward#a/DET person/NOUN#0.0#0.0"],
        "000002": ["a man jumps#x#0.0#0.0"],
        "000003": ["broken#x#0.0#0.0"],
        "000005": ["a person sits#x#0.0#0.0"],
        "000007": ["a person stands#x#0.0#0.0"],
    }
    ids = {"train": ["000001", "M000001", "000002", "000003", "000004"], "val": ["000005"], "test": ["000007"]}
    root = tmp_path / "HumanML3D"
    write_folder(root, ids, motions, texts)
    return root, motions


def test_humanml3d_layout(humanml3d_folder, caplog):
    root, motions = humanml3d_folder
    with caplog.at_level(logging.WARNING, logger="motionpatches.data"):
        data = load_motion_folder(str(root), skeleton="humanml3d", min_frames=10)
    assert isinstance(data, datasets.DatasetDict) and set(data) == {"train", "validation", "test"}
    assert isinstance(data["train"].features["motion"], datasets.Array3D)
    train = data["train"].with_format("numpy")
    rows = {row["id"]: row for row in train}
    assert set(rows) == {"000001", "000001#1#3", "M000001", "000002"}
    assert list(rows["000001"]["captions"]) == ["a person walks forward", "someone walks ahead"]
    assert list(rows["000001#1#3"]["captions"]) == ["then turns around", "and turns"]
    np.testing.assert_array_equal(rows["000001"]["motion"], motions["000001"])
    np.testing.assert_array_equal(rows["000001#1#3"]["motion"], motions["000001"][20:60])
    assert "1 (no motion file)" in caplog.text and "1 (NaN or inf)" in caplog.text
    assert len(data["validation"]) == 1 and len(data["test"]) == 1


def test_length_limits(humanml3d_folder):
    root, _ = humanml3d_folder
    data = load_motion_folder(str(root), skeleton="humanml3d", min_frames=45, max_frames=100)
    assert set(data["train"]["id"]) == {"000001", "M000001"}  # 40-frame sub-clip too short, 120 frames too long


def test_kit_frame_rate_is_interpolated_not_repeated(tmp_path):
    rng = np.random.default_rng(1)
    motion = rng.normal(size=(30, 21, 3)).astype(np.float32)
    write_folder(tmp_path / "KIT", {"train": ["00001"]}, {"00001": motion}, {"00001": ["a person waves#x#0.0#0.0"]})
    data = load_motion_folder(str(tmp_path / "KIT"), skeleton="kit")
    ours = data["train"].with_format("numpy")[0]["motion"]
    times = np.arange(0, 29 / 12.5 + 1e-9, 1 / 20)
    expected = np.stack(
        [np.stack([np.interp(times, np.arange(30) / 12.5, motion[:, j, c]) for c in range(3)], -1) for j in range(21)],
        1,
    )
    assert ours.shape == expected.shape == (47, 21, 3)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    repeated = load_motion_folder(str(tmp_path / "KIT"), skeleton="kit", kit_repeat_frames=True)["train"].with_format(
        "numpy"
    )[0]["motion"]
    # blocks of 12 frames -> 20 (offsets floor(0.625 k)), then the 6-frame tail keeps offsets below 6
    assert repeated.shape == (20 + 20 + 10, 21, 3)
    np.testing.assert_array_equal(repeated[:4], motion[[0, 0, 1, 1]])
    np.testing.assert_array_equal(repeated[20:24], motion[[12, 12, 13, 13]])


def test_custom_skeleton_folder(tmp_path, stick_skeleton_file):
    motion = np.random.default_rng(2).normal(size=(31, 7, 3)).astype(np.float32)
    write_folder(tmp_path / "mocap", {"train": ["take1"]}, {"take1": motion}, {"take1": ["a stick figure dances"]})
    data, name = load_named_dataset(str(tmp_path / "mocap"), skeleton=str(stick_skeleton_file))
    assert "validation" not in data and name.name == "stick"
    row = data["train"].with_format("numpy")[0]
    assert row["motion"].shape == (21, 7, 3)  # 1 s at 30 fps -> 20 fps
    assert list(row["captions"]) == ["a stick figure dances"]


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        load_motion_folder(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no train.txt"):
        load_motion_folder(str(tmp_path / "empty"))
    write_folder(tmp_path / "wrong", {"train": ["a"]}, {"a": np.zeros((20, 21, 3), np.float32)}, {"a": ["x#x#0.0#0.0"]})
    with pytest.raises(ValueError, match=r"every motion was skipped .*wrong shape"):
        load_motion_folder(str(tmp_path / "wrong"), skeleton="humanml3d")


def test_exported_demo_folder_loads_back(tmp_path):
    from motionpatches.training.data.demo import load_demo_dataset
    from motionpatches.training.export_demo import export_demo

    export_demo(str(tmp_path / "demo"), seed=3, sizes=(6, 2, 2))
    original = load_demo_dataset(6, 2, 2, seed=3)
    reloaded = load_motion_folder(str(tmp_path / "demo"))
    for split in ("train", "validation", "test"):
        assert list(reloaded[split]["id"]) == list(original[split]["id"])
        assert [list(c) for c in reloaded[split]["captions"]] == [list(c) for c in original[split]["captions"]]
        np.testing.assert_array_equal(
            reloaded[split].with_format("numpy")[0]["motion"], original[split].with_format("numpy")[0]["motion"]
        )


def test_unreadable_files_are_skipped_counted_and_named(tmp_path, caplog):
    motion = np.random.default_rng(3).normal(size=(30, 22, 3)).astype(np.float32)
    ids = ["good", "empty", "zipped", "archive", "noise", "broken"]
    write_folder(tmp_path / "mocap", {"train": ids}, {"good": motion}, {i: [f"caption {i}#x#0.0#0.0"] for i in ids})
    joints = tmp_path / "mocap" / "new_joints"
    (joints / "empty.npy").write_bytes(b"")
    with open(joints / "zipped.npy", "wb") as f:  # a .npz archive under a .npy name
        np.savez(f, positions=motion)
    np.savez(joints / "archive.npz", poses=np.zeros((30, 72)))
    (joints / "noise.npy").write_bytes(np.random.default_rng(0).bytes(200))
    (joints / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n")
    with caplog.at_level(logging.WARNING):
        data = load_motion_folder(str(tmp_path / "mocap"), skeleton="humanml3d")
    assert list(data["train"]["id"]) == ["good"]
    for counted in ("1 (empty file)", "2 (unsupported .npz)", "1 (not a .npy array)", "1 (malformed BVH file)"):
        assert counted in caplog.text, caplog.text
    assert f"{joints / 'empty.npy'} is empty (0 bytes)" in caplog.text
    assert str(joints / "broken.bvh") in caplog.text


def test_a_split_of_another_skeleton_suggests_the_skeleton_option(tmp_path):
    kit = np.random.default_rng(4).normal(size=(30, 21, 3)).astype(np.float32)
    write_folder(tmp_path / "kit", {"train": ["a", "b"]}, {"a": kit, "b": kit}, {"a": ["x"], "b": ["y"]})
    with pytest.raises(ValueError) as error:
        load_motion_folder(str(tmp_path / "kit"), skeleton="humanml3d")
    message = str(error.value)
    assert "every motion was skipped" in message and "wrong shape" in message
    assert str(tmp_path / "kit" / "new_joints" / "a.npy") in message
    assert "has shape (30, 21, 3), expected (frames, 22, 3)" in message and "--skeleton kit" in message


def test_an_unreadable_first_bvh_file_does_not_decide_the_rig(tmp_path, caplog):
    root = tmp_path / "mocap"
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    (root / "new_joints" / "a_empty.bvh").write_text("")
    (root / "new_joints" / "b_take.bvh").write_text(bvh_text(frames=30))
    for name in ("a_empty", "b_take"):
        (root / "texts" / f"{name}.txt").write_text("a person dances#x#0.0#0.0\n")
    (root / "train.txt").write_text("a_empty\nb_take\n")
    with caplog.at_level(logging.WARNING):
        data = load_motion_folder(str(root))
    assert list(data["train"]["id"]) == ["b_take"]
    assert "1 (malformed BVH file)" in caplog.text and "a_empty.bvh" in caplog.text
    (root / "new_joints" / "b_take.bvh").write_text("HIERARCHY\n")
    with pytest.raises(MotionFileError, match=r"no readable BVH file .*--skeleton.*a_empty\.bvh, line 1"):
        load_motion_folder(str(root))


@pytest.mark.parametrize("skeleton, joints", [(None, 22), ("smpl24", 24)])
def test_amass_files_in_a_folder_give_the_skeletons_joint_set(tmp_path, skeleton, joints):
    """`--skeleton smpl24` reads the folder's AMASS .npz files with the hands (the reader's default is HumanML3D's
    22 joints), at their own 60 fps brought to 20."""
    pytest.importorskip("smplx", reason="the smpl extra is in dev")
    from smpl_samples import expected_joints, smpl24_columns, write_amass, write_female_models

    from motionpatches.training.params import parse_args
    from motionpatches.training.train import load_data

    root, names = tmp_path / "amass", ["a", "b"]
    write_folder(root, {"train": names, "test": ["b"]}, {}, {name: [f"a person dances {name}"] for name in names})
    takes = [
        write_amass(root / "new_joints" / f"{name}.npz", "smplh", seed=seed, fps=60.0)
        for seed, name in enumerate(names)
    ]
    models = write_female_models(tmp_path / "body_models")
    flags = ["--dataset_name", str(root), "--body_model_dir", str(tmp_path / "body_models")]
    args = parse_args([*flags, *(["--skeleton", skeleton] if skeleton else [])])
    data = load_data(args)
    assert args.skeleton.num_joints == joints and list(data["train"]["id"]) == names
    for row, amass in zip(data["train"].with_format("numpy"), takes):
        positions = expected_joints("smplh", models["smplh"], amass)[:, smpl24_columns("smplh")[:joints]]
        assert row["motion"].shape == (13, joints, 3)  # 37 frames at 60 fps: 36 / 3 + 1 at 20 fps
        np.testing.assert_allclose(row["motion"], resample_frame_rate(positions, 60.0, 20.0), atol=1e-5, rtol=0)
