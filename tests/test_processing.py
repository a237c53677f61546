import json
import re

import numpy as np
import pytest
import torch
from transformers import AutoProcessor

from motionpatches import MotionPatchFeatureExtractor, MotionPatchProcessor, Skeleton

# The reference implementation's HumanML3D chains, in its order, written out independently of the package.
REFERENCE_HUMANML3D_CHAINS = [
    [0, 2, 5, 8, 11],
    [0, 1, 4, 7, 10],
    [0, 3, 6, 9, 12, 15],
    [9, 14, 17, 19, 21],
    [9, 13, 16, 18, 20],
]
REFERENCE_KIT_CHAINS = [[0, 11, 12, 13, 14, 15], [0, 16, 17, 18, 19, 20], [0, 1, 2, 3, 4], [3, 5, 6, 7], [3, 8, 9, 10]]


def reference_motion_patches(motion, chains, mean=None, std=None, frames=224, points=16):
    """The paper's construction, slowly: z-score, then one OpenCV resize per part per frame, zero padding."""
    cv2 = pytest.importorskip("cv2")
    if mean is not None:
        motion = (motion - mean) / std
    rows = []
    for t in range(min(len(motion), frames)):
        parts = [
            cv2.resize(motion[t, chain][None].astype(np.float32), (points, 1), interpolation=cv2.INTER_LINEAR)
            for chain in chains
        ]
        rows.append(np.concatenate(parts, axis=1)[0])
    image = np.zeros((frames, points * len(chains), 3), dtype=np.float32)
    image[: len(rows)] = np.stack(rows)
    return image.transpose(2, 0, 1)


def test_matches_reference_construction_on_real_sample(sample_motion):
    extractor = MotionPatchFeatureExtractor(skeleton="humanml3d", part_order="reference")
    ours = extractor(sample_motion, return_tensors="np")["motion_values"]
    assert ours.shape == (1, 3, 224, 80)
    np.testing.assert_allclose(ours[0], reference_motion_patches(sample_motion, REFERENCE_HUMANML3D_CHAINS), atol=1e-5)
    # the sample is 170 frames: the rest is zero padding
    assert not ours[0, :, 170:].any() and np.abs(ours[0, :, :170]).sum(axis=(0, 2)).all()


def test_matches_reference_with_dataset_statistics(sample_motion):
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(22, 3)).astype(np.float32)
    std = rng.uniform(0.5, 2.0, size=(22, 3)).astype(np.float32)
    extractor = MotionPatchFeatureExtractor(part_order="reference", mean=mean, std=std)
    ours = extractor([sample_motion])["motion_values"][0]
    np.testing.assert_allclose(
        ours, reference_motion_patches(sample_motion, REFERENCE_HUMANML3D_CHAINS, mean, std), atol=1e-5
    )


def test_kit_reference_order(sample_motion):
    kit_motion = sample_motion[:, :21] * 1000.0  # any 21-joint array; KIT positions are in millimetres
    extractor = MotionPatchFeatureExtractor(skeleton="kit", part_order="reference")
    ours = extractor(kit_motion)["motion_values"][0]
    np.testing.assert_allclose(ours, reference_motion_patches(kit_motion, REFERENCE_KIT_CHAINS), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("skeleton", ["humanml3d", "kit"])
def test_canonical_order_puts_same_body_part_in_same_columns(skeleton, sample_motion):
    motion = sample_motion[:, : 22 if skeleton == "humanml3d" else 21]
    reference = MotionPatchFeatureExtractor(skeleton=skeleton, part_order="reference")
    canonical = MotionPatchFeatureExtractor(skeleton=skeleton)
    assert canonical.part_names == ["torso", "left_arm", "right_arm", "left_leg", "right_leg"]
    ref_values = reference(motion)["motion_values"][0]
    can_values = canonical(motion)["motion_values"][0]
    for column, part in enumerate(canonical.part_names):
        ref_column = reference.part_names.index(part)
        np.testing.assert_array_equal(
            can_values[..., column * 16 : (column + 1) * 16], ref_values[..., ref_column * 16 : (ref_column + 1) * 16]
        )


def test_input_forms_agree(sample_motion, sample_motion_path):
    extractor = MotionPatchFeatureExtractor()
    from_array = extractor(sample_motion)["motion_values"]
    np.testing.assert_array_equal(extractor(sample_motion_path)["motion_values"], from_array)
    np.testing.assert_array_equal(extractor([torch.from_numpy(sample_motion)])["motion_values"], from_array)
    np.testing.assert_array_equal(extractor(sample_motion.astype(np.float64))["motion_values"], from_array)
    stacked = extractor(np.stack([sample_motion, sample_motion]), return_tensors="pt")["motion_values"]
    assert isinstance(stacked, torch.Tensor) and stacked.shape == (2, 3, 224, 80)


def test_batch_of_different_lengths_crops_and_pads(sample_motion):
    long_motion = np.concatenate([sample_motion, sample_motion[::-1], sample_motion])  # 510 frames
    extractor = MotionPatchFeatureExtractor(part_order="reference")
    out = extractor([long_motion, sample_motion[:30]], return_motion_lengths=True)
    assert out["motion_lengths"].tolist() == [224, 30]
    full = reference_motion_patches(long_motion, REFERENCE_HUMANML3D_CHAINS, frames=len(long_motion))
    np.testing.assert_allclose(out["motion_values"][0], full[:, :224], atol=1e-5)
    assert not out["motion_values"][1, :, 30:].any()

    random_a = extractor(long_motion, crop="random", rng=3)["motion_values"][0]
    random_b = extractor(long_motion, crop="random", rng=3)["motion_values"][0]
    np.testing.assert_array_equal(random_a, random_b)
    starts = [s for s in range(len(long_motion) - 224 + 1) if np.allclose(full[:, s : s + 224], random_a, atol=1e-5)]
    assert starts, "a random crop must be a contiguous 224-frame window of the motion"
    windows = {
        int(
            np.argmax(
                [
                    np.allclose(
                        full[:, s : s + 224],
                        extractor(long_motion, crop="random", rng=seed)["motion_values"][0],
                        atol=1e-5,
                    )
                    for s in range(287)
                ]
            )
        )
        for seed in range(6)
    }
    assert len(windows) > 1, "different seeds should give different windows"


def test_frame_rate_resampling_matches_linear_interpolation(sample_motion):
    kit_rate = sample_motion[::2][:60]  # pretend 12.5 fps input
    extractor = MotionPatchFeatureExtractor(part_order="reference")
    out = extractor(kit_rate, motion_fps=12.5, return_motion_lengths=True)
    times = np.arange(0, (len(kit_rate) - 1) / 12.5 + 1e-9, 1 / 20)
    source_times = np.arange(len(kit_rate)) / 12.5
    expected = np.stack(
        [np.stack([np.interp(times, source_times, kit_rate[:, j, c]) for c in range(3)], -1) for j in range(22)], 1
    )
    assert out["motion_lengths"][0] == len(times)
    np.testing.assert_allclose(
        out["motion_values"][0],
        reference_motion_patches(expected.astype(np.float32), REFERENCE_HUMANML3D_CHAINS),
        atol=1e-5,
    )


def test_fit_statistics_streaming_equals_direct(sample_motion):
    motions = [sample_motion, sample_motion[:40] * 2.0 + 1.0, sample_motion[100:] - 0.5]
    extractor = MotionPatchFeatureExtractor()
    mean, std = extractor.fit_statistics(iter(motions))
    everything = np.concatenate(motions).astype(np.float64)
    np.testing.assert_allclose(mean, everything.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, everything.std(axis=0), rtol=1e-5, atol=1e-6)
    normalised = extractor(sample_motion)["motion_values"]
    plain = MotionPatchFeatureExtractor(mean=None, std=None)(sample_motion)["motion_values"]
    assert not np.allclose(normalised, plain)


def test_custom_skeleton_from_json_with_joint_names(tmp_path, sample_motion):
    preset = MotionPatchFeatureExtractor(skeleton="humanml3d")
    names = list(preset.skeleton.joint_names)
    spec = {
        "name": "my_rig",
        "joint_names": names,
        "chains": {part: [names[j] for j in chain] for part, chain in preset.skeleton.chains.items()},
    }
    path = tmp_path / "rig.json"
    path.write_text(json.dumps(spec))
    custom = MotionPatchFeatureExtractor(skeleton=str(path))
    assert custom.skeleton.name == "my_rig"
    np.testing.assert_array_equal(custom(sample_motion)["motion_values"], preset(sample_motion)["motion_values"])
    # chains given as a plain list keep their given order
    listed = MotionPatchFeatureExtractor(skeleton={"joint_names": names, "chains": REFERENCE_HUMANML3D_CHAINS})
    np.testing.assert_array_equal(
        listed(sample_motion)["motion_values"],
        MotionPatchFeatureExtractor(part_order="reference")(sample_motion)["motion_values"],
    )


def test_processor_calls_and_round_trip(tmp_path, tokenizer, sample_motion):
    rng = np.random.default_rng(1)
    processor = MotionPatchProcessor(
        tokenizer=tokenizer, skeleton="humanml3d", mean=rng.normal(size=(22, 3)), std=rng.uniform(1, 2, size=(22, 3))
    )
    both = processor(
        text=["a person walks forward", "someone jumps"],
        motions=[sample_motion, sample_motion[:10]],
        return_tensors="pt",
    )
    assert set(both) == {"input_ids", "token_type_ids", "attention_mask", "motion_values"}
    assert both["motion_values"].shape == (2, 3, 224, 80) and both["input_ids"].shape[0] == 2
    assert set(processor(text="a person walks")) == {"input_ids", "token_type_ids", "attention_mask"}
    assert set(processor(motions=sample_motion)) == {"motion_values"}
    with pytest.raises(ValueError, match="text.*motions"):
        processor()

    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, MotionPatchProcessor)
    again = loaded(
        text=["a person walks forward", "someone jumps"],
        motions=[sample_motion, sample_motion[:10]],
        return_tensors="pt",
    )
    for key in both:
        torch.testing.assert_close(again[key], both[key], rtol=0, atol=0)
    saved = json.loads((tmp_path / "processor_config.json").read_text())["feature_extractor"]
    assert saved["skeleton"]["chains"]["left_arm"] == [9, 13, 16, 18, 20]
    assert len(saved["mean"]) == 22 and saved["part_order"] == "canonical" and saved["num_frames"] == 224


def _motion(frames=20, joints=22):
    return np.random.default_rng(0).normal(size=(frames, joints, 3)).astype(np.float32)


def _with_nan():
    motion = _motion()
    motion[5, 3, 1] = np.nan
    return motion


def _with_inf():
    motion = _motion()
    motion[2, 0, 0] = np.inf
    return motion


@pytest.mark.parametrize(
    "motions, error, pattern",
    [
        (_motion()[0], ValueError, r"shape \(22, 3\) is not \(frames, joints, 3\)"),
        (_motion()[..., :2], ValueError, r"shape \(20, 22, 2\)"),
        (_motion(joints=21), ValueError, "21 joints but skeleton 'humanml3d' has 22"),
        (_with_nan(), ValueError, "NaN .*frame 5, joint 3"),
        (_with_inf(), ValueError, "inf .*frame 2, joint 0"),
        (_motion(frames=0), ValueError, "zero frames"),
        ([], ValueError, "motions is empty"),
        (np.full((20, 22, 3), "x"), TypeError, "dtype <U1 is not numeric"),
        (np.zeros((20, 22, 3), dtype=bool), TypeError, "dtype bool is not numeric"),
        ([_motion(), {"joints": 1}], TypeError, "motion 1: expected .* got dict"),
        (42, TypeError, r"motions must be .*feature rows \(frames, 263 \| 251\).*\.npz \(SMPL-H / SMPL-X parameters\)"),
        (_motion()[:, :, 0], ValueError, r"shape \(20, 22\) is not \(frames, joints, 3\) nor feature rows"),
        ("/nonexistent/motion.npy", FileNotFoundError, "motion file not found: /nonexistent/motion.npy"),
    ],
)
def test_bad_motions_raise_errors_naming_the_problem(motions, error, pattern):
    with pytest.raises(error, match=pattern):
        MotionPatchFeatureExtractor()(motions)


def test_bad_files_and_skeletons(tmp_path):
    object_file = tmp_path / "objects.npy"
    with open(object_file, "wb") as f:  # declares Python objects without pickling any: the reader must not look further
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": (1,)})
        f.write(b"not a pickle")
    with pytest.raises(ValueError, match="objects.npy is not a numeric .npy array"):
        MotionPatchFeatureExtractor()(str(object_file))
    with pytest.raises(ValueError, match="unknown skeleton 'smpl_99'.*humanml3d"):
        MotionPatchFeatureExtractor(skeleton="smpl_99")
    with pytest.raises(ValueError, match="joint index 7 out of range for 3 joints"):
        MotionPatchFeatureExtractor(skeleton={"joint_names": ["a", "b", "c"], "chains": [[0, 1], [1, 7]]})
    with pytest.raises(ValueError, match="names joint 'elbow', which is not in joint_names"):
        Skeleton.from_dict({"joint_names": ["a", "b"], "chains": {"arm": ["a", "elbow"]}})
    with pytest.raises(FileNotFoundError, match="skeleton file not found"):
        MotionPatchFeatureExtractor(skeleton=str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="std has shape \\(21, 3\\); skeleton 'humanml3d' needs \\(22, 3\\)"):
        MotionPatchFeatureExtractor(mean=np.zeros((22, 3)), std=np.ones((21, 3)))
    with pytest.raises(ValueError, match="std must be positive; joint 4"):
        std = np.ones((22, 3))
        std[4, 2] = 0.0
        MotionPatchFeatureExtractor(mean=np.zeros((22, 3)), std=std)
    with pytest.raises(ValueError, match="no reference part order"):
        MotionPatchFeatureExtractor(skeleton={"joint_names": ["a", "b"], "chains": [[0, 1]]}, part_order="reference")


@pytest.mark.parametrize("name", ["humanml3d", "kit", "smpl24", "smplx", "h36m", "ntu"])
def test_presets_have_anatomical_chains(name, sample_motion):
    from motionpatches import SKELETON_PRESETS

    skeleton = SKELETON_PRESETS[name]
    chains = skeleton.chains
    assert set(chains) == {"torso", "left_arm", "right_arm", "left_leg", "right_leg"}
    # arms branch off the torso chain; legs start at the torso's root (centre outward)
    assert chains["left_arm"][0] in chains["torso"] and chains["right_arm"][0] in chains["torso"]
    assert chains["left_leg"][0] == chains["right_leg"][0] == chains["torso"][0]

    def mirrored(name):
        swapped = re.sub(r"left|right", lambda m: "right" if m.group() == "left" else "left", name)
        if swapped == name and name[:1] in ("L", "R"):  # KIT's LS, RE, ...
            swapped = ("R" if name[0] == "L" else "L") + name[1:]
        return swapped

    for part in ("arm", "leg"):
        left = [skeleton.joint_names[j] for j in chains[f"left_{part}"]]
        right = [skeleton.joint_names[j] for j in chains[f"right_{part}"]]
        assert [mirrored(n) for n in left] == right
    # any (T, J, 3) motion of the right joint count goes through
    motion = np.resize(sample_motion, (50, skeleton.num_joints, 3))
    assert MotionPatchFeatureExtractor(skeleton=name)(motion)["motion_values"].shape == (1, 3, 224, 80)


def test_reference_frame_repeating_mode(sample_motion):
    kit_rate = sample_motion[:25]
    repeated = MotionPatchFeatureExtractor(part_order="reference", frame_rate_mode="repeat")
    out = repeated(kit_rate, motion_fps=12.5, return_motion_lengths=True)
    # the reference: blocks of 12 frames, each giving 20 by offsets floor(0.625 k); a partial block keeps what exists
    offsets = [0, 0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 8, 9, 10, 10, 11, 11]
    source_frames = [b + o for b in (0, 12, 24) for o in offsets if b + o < 25]
    assert out["motion_lengths"].tolist() == [len(source_frames)] == [42]
    expected = reference_motion_patches(kit_rate[source_frames], REFERENCE_HUMANML3D_CHAINS)
    np.testing.assert_allclose(out["motion_values"][0], expected, atol=1e-5)
    with pytest.raises(ValueError, match="frame_rate_mode='nearest'"):
        MotionPatchFeatureExtractor(frame_rate_mode="nearest")
