"""Pictures: motion-patch image geometry and colours, camera convention, GIF frames, figures, attention, CLI."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from motionpatches import MotionPatchProcessor, MotionTextModel
from motionpatches.tiny import tiny_config
from motionpatches.visualization import (
    PART_COLOURS,
    attention_figure,
    class_token_attention,
    keyframe_strip,
    motion_attention,
    motion_patches_image,
    render_pose,
    retrieval_figure,
    skeleton_animation,
)

NUM_FRAMES = 64  # a 4 x 5 patch grid keeps the tiny ViT fast


# ------------------------------------------------------------------------------------------ motion patches


def marked_values(frames=32, parts=3):
    """Random values in [0.2, 0.8] with one pure-x-maximum and one pure-y-maximum value."""
    values = np.random.default_rng(0).uniform(0.2, 0.8, size=(3, frames, parts * 16))
    values[:, 5, 7] = (1.0, 0.0, 0.0)  # part 0, frame 5: max x, min y, min z -> red
    values[:, 20, 40] = (0.0, 1.0, 0.0)  # part 2, frame 20: max y -> green
    return values


def pixel(image, frame, column, cell, separator, part_width=16):
    """The centre of the enlarged value (frame, column), skipping the separators of earlier parts."""
    x = column * cell + (column // part_width) * separator + cell // 2
    return image.getpixel((x, frame * cell + cell // 2))


def test_patch_image_size_colours_and_separators():
    cell, separator = 3, 5
    image = motion_patches_image(marked_values(), cell=cell, separator=separator)
    assert image.mode == "RGB"
    assert image.size == (3 * 16 * cell + 2 * separator, 32 * cell)
    assert pixel(image, 5, 7, cell, separator) == (255, 0, 0)
    assert pixel(image, 20, 40, cell, separator) == (0, 255, 0)
    array = np.asarray(image)
    for part in (1, 2):
        left = part * 16 * cell + (part - 1) * separator
        assert (array[:, left : left + separator] == 255).all(), f"separator before part {part} is not white"
    # the columns next to the separators are motion values, not white
    assert not (array[:, 16 * cell - 1] == 255).all()
    assert not (array[:, 16 * cell + separator] == 255).all()


def test_patch_image_scales_each_channel_and_greys_constant_ones():
    values = marked_values()
    values[0] *= 1000.0  # x in other units: per-channel scaling gives the same picture
    values[2] = 7.0
    image = np.asarray(motion_patches_image(values, cell=1, separator=0))
    reference = np.asarray(motion_patches_image(marked_values(), cell=1, separator=0))
    np.testing.assert_array_equal(image[..., :2], reference[..., :2])
    assert (image[..., 2] == 128).all()
    assert image[5, 7, 0] == 255 and image[..., 0].min() == 0


def test_patch_image_accepts_a_batch_of_one_tensor_and_labels_parts():
    values = marked_values()
    plain = motion_patches_image(values)
    batched = motion_patches_image(torch.tensor(values)[None])
    np.testing.assert_array_equal(np.asarray(plain), np.asarray(batched))
    labelled = motion_patches_image(values, part_names=["torso", "left_arm", "right_arm"])
    assert labelled.width == plain.width and labelled.height > plain.height
    np.testing.assert_array_equal(np.asarray(labelled)[labelled.height - plain.height :], np.asarray(plain))
    with pytest.raises(ValueError, match="2 motions"):
        motion_patches_image(np.zeros((2, 3, 32, 48)))
    with pytest.raises(ValueError, match="cannot be split"):
        motion_patches_image(values, part_names=["a", "b", "c", "d", "e"])


def test_patch_image_of_real_motion_through_the_feature_extractor(sample_motion):
    from motionpatches.processors import MotionPatchFeatureExtractor

    extractor = MotionPatchFeatureExtractor(skeleton="humanml3d", num_frames=160)
    image = motion_patches_image(extractor(sample_motion)["motion_values"], extractor.part_names, cell=2)
    assert image.width == 80 * 2 + 4 * 2
    assert image.height > 160 * 2


# ------------------------------------------------------------------------------------------ skeletons


def t_pose(shift=(0.0, 0.0, 0.0)):
    """An SMPL-22 T-pose facing +Z: torso up Y, left arm along +X, right arm along -X, feet on y = 0."""
    pose = np.zeros((22, 3))
    for i, joint in enumerate((0, 3, 6, 9, 12, 15)):
        pose[joint] = (0.0, 0.95 + 0.14 * i, 0.0)
    for side, (arm, leg) in {1: ((13, 16, 18, 20), (1, 4, 7, 10)), -1: ((14, 17, 19, 21), (2, 5, 8, 11))}.items():
        for i, joint in enumerate(arm):
            pose[joint] = (side * 0.15 * (i + 1), 1.45, 0.0)
        for i, joint in enumerate(leg):
            pose[joint] = (side * 0.1, 0.9 - 0.3 * i, 0.1 * (i == 3))
    return pose + np.asarray(shift)


def colour_centre(image, colour, tolerance=40):
    """Mean (x, y) of the pixels within `tolerance` of `colour`."""
    array = np.asarray(image).astype(int)
    ys, xs = np.nonzero(np.abs(array - np.asarray(colour)).sum(axis=-1) < tolerance)
    assert len(xs) > 10, f"colour {colour} hardly appears"
    return xs.mean(), ys.mean()


def test_front_view_shows_the_left_side_on_the_right_and_the_head_up():
    image = render_pose(t_pose(), "humanml3d", size=200, view="front")
    assert image.size == (200, 200)
    left_x, left_y = colour_centre(image, PART_COLOURS["left_arm"])
    right_x, _ = colour_centre(image, PART_COLOURS["right_arm"])
    assert left_x > 120 and right_x < 80, "front view: the person's left (+X) belongs on the image's right"
    _, leg_y = colour_centre(image, PART_COLOURS["left_leg"])
    assert left_y < leg_y, "up (+Y) must be up"


def test_top_and_side_views_follow_the_documented_camera():
    top = render_pose(t_pose(), "humanml3d", size=200, view="top")
    assert colour_centre(top, PART_COLOURS["left_arm"])[0] < 100 < colour_centre(top, PART_COLOURS["right_arm"])[0]
    pose = t_pose()
    pose[[20, 21], 2] = 0.5  # hands reach forward (+Z)
    side = render_pose(pose, "humanml3d", size=200, view="side")
    hand_x, _ = colour_centre(side, PART_COLOURS["right_arm"])  # seen from the right, it hides the left arm
    torso_x, _ = colour_centre(side, PART_COLOURS["torso"])
    assert hand_x > torso_x, "side view: the facing direction (+Z) points to the image's right"


def test_ground_line_lies_under_the_feet():
    image = np.asarray(render_pose(t_pose(), "humanml3d", size=200))
    grey_rows = np.nonzero((np.abs(image.astype(int) - 150).sum(axis=-1) < 30).sum(axis=1) > 150)[0]
    assert len(grey_rows), "no ground line"
    _, leg_y = colour_centre(image, PART_COLOURS["right_leg"])
    assert grey_rows.min() > leg_y and grey_rows.max() > 170


def walking_t_pose(frames=12):
    """A T-pose sliding along +X with its left arm rising: every frame differs."""
    motion = np.stack([t_pose((0.1 * t, 0.0, 0.0)) for t in range(frames)])
    motion[:, 20, 1] += np.linspace(0, 0.4, frames)
    return motion.astype(np.float32)


@pytest.mark.parametrize("stride, expected", [(1, 12), (5, 3)])
def test_animation_is_a_gif_with_one_frame_per_kept_motion_frame(tmp_path, stride, expected):
    path = skeleton_animation(walking_t_pose(), "humanml3d", tmp_path / "walk.gif", size=96, stride=stride, trail=True)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.size == (96, 96)
        assert gif.n_frames == expected
        assert gif.info["duration"] == 50 * stride  # 20 fps, the HumanML3D skeleton's rate
        assert gif.info["loop"] == 0


def test_animation_rejects_a_motion_of_another_skeleton(tmp_path):
    with pytest.raises(ValueError, match="22 joints"):
        skeleton_animation(walking_t_pose(), "kit", tmp_path / "x.gif")


def test_keyframe_strip_width(sample_motion):
    strip = keyframe_strip(sample_motion, "humanml3d", num_keyframes=4, size=90, view="side")
    assert strip.size == (4 * 90, 90)


def test_retrieval_figure_grows_with_motions(sample_motion):
    motions = [sample_motion, walking_t_pose()]
    one = retrieval_figure(
        "a person waves", motions[:1], "humanml3d", scores=[0.9], captions=["wave"], num_keyframes=3, size=60
    )
    two = retrieval_figure("a person waves", motions, "humanml3d", scores=[0.9, 0.2], num_keyframes=3, size=60)
    assert one.width == two.width == 3 * 60
    assert two.height > one.height + 60
    with pytest.raises(ValueError, match="scores has 1 entries for 2 motions"):
        retrieval_figure("q", motions, "humanml3d", scores=[0.5])


# ------------------------------------------------------------------------------------------ attention


def attention_model(tokenizer, qk_norm=False, seed=0):
    torch.manual_seed(seed)
    backbone_kwargs = {"embed_dim": 32, "depth": 2, "num_heads": 2, "qk_norm": qk_norm}
    config = tiny_config(len(tokenizer), motion_config={"num_frames": NUM_FRAMES, "backbone_kwargs": backbone_kwargs})
    return MotionTextModel(config)


@pytest.fixture(scope="module")
def motion_values(tokenizer, sample_motion):
    processor = MotionPatchProcessor(tokenizer=tokenizer, skeleton="humanml3d", num_frames=NUM_FRAMES)
    return processor(motions=[sample_motion], return_tensors="pt")["motion_values"]


def timm_attention_row(model, motion_values):
    """The class token's head-averaged attention as timm's own (unfused) path computes it."""
    attn = model.motion_model.blocks[-1].attn
    recorded = {}

    class Record(torch.nn.Module):
        def forward(self, weights):
            recorded["weights"] = weights
            return weights

    attn.fused_attn, attn.attn_drop = False, Record()
    with torch.no_grad():
        model.eval().get_motion_features(motion_values=motion_values)
    return recorded["weights"][0, :, 0, :].mean(dim=0).numpy()


@pytest.mark.parametrize("qk_norm", [False, True])
def test_class_token_attention_matches_timm_and_sums_to_one(tokenizer, motion_values, qk_norm):
    model = attention_model(tokenizer, qk_norm=qk_norm).train()
    row = class_token_attention(model, motion_values)
    grid = motion_attention(model, motion_values)
    assert model.training, "the model's training mode must be restored"
    assert row.shape == (1 + (NUM_FRAMES // 16) * 5,)
    assert grid.shape == (NUM_FRAMES // 16, 5)
    # the patch grid plus the class token's weight on itself is the whole softmax row
    assert row.sum() == pytest.approx(1.0, abs=1e-5)
    assert grid.sum() + row[0] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(grid.ravel(), row[1:])
    np.testing.assert_allclose(row, timm_attention_row(model, motion_values), atol=1e-6)


def test_attention_changes_with_the_weights(tokenizer, motion_values):
    model = attention_model(tokenizer)
    before = motion_attention(model, motion_values[0])
    with torch.no_grad():
        model.motion_model.blocks[-1].attn.qkv.weight.mul_(3.0)
    after = motion_attention(model, motion_values[0])
    assert np.abs(after - before).max() > 1e-4


def test_attention_figure_reddens_the_most_attended_patch(motion_values):
    attention = np.full((NUM_FRAMES // 16, 5), 0.01)
    attention[2, 3] = 0.2
    cell, separator = 2, 2
    gap = 10
    figure = np.asarray(attention_figure(motion_values, attention, cell=cell, separator=separator, gap=gap)).astype(int)
    plain = np.asarray(motion_patches_image(motion_values, cell=cell, separator=separator))
    width = plain.shape[1]
    assert figure.shape[1] == 2 * width + gap and figure.shape[0] > plain.shape[0]  # plus the legend
    np.testing.assert_array_equal(figure[: plain.shape[0], :width], plain)  # the motion patches on the left
    assert (figure[: plain.shape[0], width : width + gap] == 255).all()

    def redness(row, part):
        y = (row * 16 + 8) * cell
        x = width + gap + part * (16 * cell + separator) + 8 * cell
        r, g, b = figure[y, x]
        return r - (g + b) / 2

    assert redness(2, 3) > 150
    assert max(redness(r, p) for r in range(4) for p in range(5) if (r, p) != (2, 3)) < redness(2, 3) - 100


# ------------------------------------------------------------------------------------------ command line


def test_cli_patches_and_gif_write_files(tmp_path, sample_motion_path):
    from motionpatches.training.visualize import main

    main(["patches", sample_motion_path, "--skeleton", "humanml3d", "--out", str(tmp_path / "p.png")])
    main(
        [
            "gif",
            sample_motion_path,
            "--view",
            "side",
            "--size",
            "64",
            "--stride",
            "10",
            "--out",
            str(tmp_path / "m.gif"),
        ]
    )
    with Image.open(tmp_path / "p.png") as image:
        assert image.width == 80 * 4 + 4 * 2 and image.height > 170 * 4  # the whole motion, 4 px per value
    with Image.open(tmp_path / "m.gif") as image:
        assert image.n_frames == 17  # ceil(170 / 10)


@pytest.mark.parametrize("command", ["patches", "gif", "keyframes"])
def test_cli_missing_motion_exits_naming_the_file(tmp_path, command):
    """In-process (an interpreter start costs seconds): SystemExit with a message is what makes
    Python print it to stderr and exit with status 1."""
    from motionpatches.training.visualize import main

    missing = tmp_path / "no_such_motion.npy"
    with pytest.raises(SystemExit) as excinfo:
        main([command, str(missing), "--out", str(tmp_path / "out")])
    assert isinstance(excinfo.value.code, str) and str(missing) in excinfo.value.code
    assert not (tmp_path / "out").exists()


def test_cli_retrieval_and_attention_with_a_saved_model(tmp_path, tokenizer, sample_motion, write_bad_motions, capsys):
    from motionpatches.training.data.demo import generate_demo_motions
    from motionpatches.training.visualize import main

    folder = tmp_path / "model"
    attention_model(tokenizer).save_pretrained(folder)
    MotionPatchProcessor(tokenizer=tokenizer, skeleton="humanml3d", num_frames=NUM_FRAMES).save_pretrained(folder)
    motions_dir = tmp_path / "motions"
    motions_dir.mkdir()
    for item in generate_demo_motions(4, seed=0):
        np.save(motions_dir / f"{item['id']}.npy", item["motion"])
    bad = write_bad_motions(motions_dir)  # skipped and listed; the folder's other motions are still ranked
    np.save(tmp_path / "sample.npy", sample_motion)

    main(
        [
            "retrieval",
            "--model_name_or_path",
            str(folder),
            "--query",
            "a person walks forward",
            "--motions_dir",
            str(motions_dir),
            "--top_k",
            "2",
            "--size",
            "50",
            "--out",
            str(tmp_path / "r.png"),
        ]
    )
    main(
        [
            "attention",
            str(tmp_path / "sample.npy"),
            "--model_name_or_path",
            str(folder),
            "--cell",
            "2",
            "--out",
            str(tmp_path / "a.png"),
        ]
    )
    with Image.open(tmp_path / "r.png") as retrieval, Image.open(tmp_path / "a.png") as attention:
        assert retrieval.width == 5 * 50 and retrieval.height > 2 * 50
        assert attention.width == 2 * (80 * 2 + 4 * 2) + 12 and attention.height > NUM_FRAMES * 2
    report = json.loads((tmp_path / "r.skipped.json").read_text())
    assert report["read"] == 4 and sorted(entry["path"] for entry in report["files"]) == sorted(bad.values())
    assert "read 4 motion files, skipped 3" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command, out, message",
    [
        ("patches", "{tmp}/missing/p.png", "--out {tmp}/missing/p.png: the folder {tmp}/missing does not exist"),
        ("keyframes", "{tmp}", "--out {tmp} is a folder"),
        ("gif", "{tmp}/m.png", "--out {tmp}/m.png must end in .gif"),
        ("patches", "{tmp}/p.notapicture", "Pillow writes no .notapicture pictures"),
    ],
)
def test_cli_checks_out_before_any_work(command, out, message, tmp_path):
    """The motion does not exist: an error about --out means it was checked first."""
    from motionpatches.training.visualize import main

    with pytest.raises(SystemExit) as excinfo:
        main([command, str(tmp_path / "no_motion.npy"), "--out", out.format(tmp=tmp_path)])
    assert message.format(tmp=tmp_path) in str(excinfo.value.code)
    assert list(tmp_path.iterdir()) == []


def test_cli_adds_the_suffix_and_a_crash_keeps_the_previous_picture(tmp_path, sample_motion_path, monkeypatch, capsys):
    from motionpatches.training.visualize import main

    main(["keyframes", sample_motion_path, "--num_keyframes", "2", "--size", "32", "--out", str(tmp_path / "k")])
    assert f"wrote {tmp_path / 'k.png'}" in capsys.readouterr().out
    before = (tmp_path / "k.png").read_bytes()

    def dies_half_way(image, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        main(["keyframes", sample_motion_path, "--num_keyframes", "3", "--out", str(tmp_path / "k.png")])
    assert (tmp_path / "k.png").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["k.png"]


def motion_file_case(kind: str, folder, sample_motion):
    """(path, flags, the options they mean, the skeleton to draw in, the frame rate to play at) of one format."""
    from motionpatches import MotionFileOptions
    from motionpatches.skipped import bvh_rig

    if kind == "bvh":
        from bvh_samples import bvh_text

        path, options = folder / "take.bvh", MotionFileOptions(bvh_scale=0.02, bvh_up_axis="y")
        path.write_text(bvh_text(frames=45, fps=30.0))
        return path, ["--bvh_scale", "0.02", "--bvh_up_axis", "y"], options, bvh_rig(path, options), 30.0
    if kind == "feature rows":
        from humanml3d_writer import features_from_positions

        path = folder / "rows.npy"
        np.save(path, features_from_positions(sample_motion[:41]).astype(np.float32))
        return path, ["--motion_format", "features"], MotionFileOptions(motion_format="features"), "humanml3d", 20.0
    pytest.importorskip("smplx", reason="the smpl extra is in dev")
    from smpl_samples import write_amass, write_female_models

    write_female_models(folder / "models")
    write_amass(folder / "take.npz", "smplx", fps=60.0)
    flags = ["--skeleton", "smpl24", "--body_model_dir", str(folder / "models")]
    options = MotionFileOptions(body_model_dir=str(folder / "models"), smpl_joints="smpl24")
    return folder / "take.npz", flags, options, "smpl24", 60.0


@pytest.mark.parametrize("kind", ["bvh", "feature rows", "amass"])
def test_cli_draws_each_motion_file_format_read_with_the_motion_file_flags(kind, tmp_path, sample_motion, monkeypatch):
    """A BVH in its rig at its own 30 fps, HumanML3D feature rows as SMPL-22 at the skeleton's 20 fps, an AMASS
    file in `--skeleton smpl24`'s 24 joints at its 60 fps: each read with the options its flags say."""
    import motionpatches.skipped
    from motionpatches.training.visualize import main

    path, flags, options, skeleton, fps = motion_file_case(kind, tmp_path, sample_motion)
    seen, read = [], motionpatches.skipped.read_motion_file
    monkeypatch.setattr(
        motionpatches.skipped, "read_motion_file", lambda path, options: seen.append(options) or read(path, options)
    )
    main(["keyframes", str(path), *flags, "--num_keyframes", "3", "--size", "48", "--out", str(tmp_path / "k.png")])
    main(["gif", str(path), *flags, "--size", "32", "--stride", "6", "--out", str(tmp_path / "m.gif")])
    assert seen == [options, options]
    motion = read(path, options).values
    with Image.open(tmp_path / "k.png") as drawn:
        np.testing.assert_array_equal(np.asarray(drawn), np.asarray(keyframe_strip(motion, skeleton, 3, 48)))
    with Image.open(tmp_path / "m.gif") as gif:
        assert gif.info["duration"] == 6000 / fps  # six frames at the file's own rate (GIFs count 10 ms steps)
