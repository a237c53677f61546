"""The training recipe's pieces wired into the trainer: the collator's augmentation and false-negative keys, the
weight average (what is validated and saved, resumed exactly), and the held-out-combination demo split."""

import json

import numpy as np
import pytest
import safetensors.torch
import torch
from test_resume import TINY, assert_same_run, checkpoint, copy_checkpoint, train

from motionpatches import MotionPatchProcessor
from motionpatches.processors.mirroring import mirror_caption, mirror_motion
from motionpatches.retrieval import default_sentence_encoder
from motionpatches.tiny import build_word_tokenizer
from motionpatches.training.augmentation import AugmentationSettings
from motionpatches.training.batching import MotionTextCollator
from motionpatches.training.data.demo import generate_demo_motions, is_held_out, load_demo_dataset
from motionpatches.training.ema import WeightAverage
from motionpatches.training.false_negatives import caption_key, side_key

RECIPE = ["--mirror_prob", "0.5", "--rotation_degrees", "15", "--speed_range", "0.9,1.1", "--min_crop_fraction", "0.8"]


def tiny_processor(num_frames):
    words = ["a person waves the left right hand clockwise counterclockwise"]
    return MotionPatchProcessor(tokenizer=build_word_tokenizer(words), skeleton="humanml3d", num_frames=num_frames)


def rows(n=4):
    motions = generate_demo_motions(n, seed=3)
    return [
        {"motion": m["motion"], "captions": [c + " with the left hand" for c in m["captions"]], "draw_seed": (0, 0, i)}
        for i, m in enumerate(motions)
    ]


def test_collator_mirrors_motion_and_caption_together():
    processor = tiny_processor(num_frames=64)
    batch_rows = rows()
    mirrored = MotionTextCollator(processor, train=True, augmentation=AugmentationSettings(mirror_prob=1.0))(batch_rows)
    # the same rows mirrored by hand, through the plain collator: the caption draw comes first in both
    by_hand = [
        {
            **row,
            "motion": mirror_motion(row["motion"], "humanml3d"),
            "captions": [mirror_caption(c) for c in row["captions"]],
        }
        for row in batch_rows
    ]
    plain = MotionTextCollator(processor, train=True)(by_hand)
    assert torch.equal(mirrored["input_ids"], plain["input_ids"])
    assert torch.allclose(mirrored["motion_values"], plain["motion_values"], atol=1e-5)
    assert not torch.equal(
        plain["motion_values"], MotionTextCollator(processor, train=True)(batch_rows)["motion_values"]
    )


def test_collator_without_recipe_adds_nothing_and_draws_the_same():
    processor = tiny_processor(num_frames=64)
    batch_rows = rows()
    plain = MotionTextCollator(processor, train=True)(batch_rows)
    off = MotionTextCollator(processor, train=True, augmentation=AugmentationSettings())(batch_rows)
    assert plain.keys() == off.keys() and not set(plain) & {"caption_keys", "side_keys", "caption_embeds"}
    for key in plain:
        assert torch.equal(plain[key], off[key])


def test_collator_adds_false_negative_keys_of_the_drawn_captions():
    processor = tiny_processor(num_frames=64)
    batch_rows = rows()
    batch = MotionTextCollator(processor, train=True, false_negatives="identical")(batch_rows)
    drawn = [row["captions"][np.random.default_rng(list(row["draw_seed"])).integers(3)] for row in batch_rows]
    assert batch["caption_keys"].tolist() == [caption_key(c) for c in drawn]
    assert batch["side_keys"].tolist() == [side_key(c) for c in drawn]
    with pytest.raises(ValueError, match="needs caption_embeddings"):
        MotionTextCollator(processor, train=True, false_negatives="similar")
    with pytest.raises(ValueError, match="false_negatives must be one of"):
        MotionTextCollator(processor, train=True, false_negatives="soft")


def test_weight_average_follows_the_documented_recursion_and_restores_the_model():
    model = torch.nn.Linear(2, 1)
    average = WeightAverage(model, decay=0.5)
    expected = {name: p.detach().clone() for name, p in model.named_parameters()}
    for update in range(1, 4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        average.update(model)
        decay = min(0.5, (1 + update) / (10 + update))
        for name, p in model.named_parameters():
            expected[name] = decay * expected[name] + (1 - decay) * p.detach()
    raw = {name: p.detach().clone() for name, p in model.named_parameters()}
    with average.applied_to(model):
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.detach(), expected[name])
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), raw[name])
    with pytest.raises(ValueError, match=r"decay must lie in \(0, 1\)"):
        WeightAverage(model, decay=1.0)


@pytest.mark.skipif(default_sentence_encoder() is None, reason="needs MiniLM (dev extra)")
def test_the_recipe_resumes_bit_identical_and_saves_the_weight_average(tmp_path):
    recipe = [*TINY, "--demo_sizes", "24,8,8", "--max_steps", "6", *RECIPE, "--ema_decay", "0.9"]
    recipe += ["--false_negatives", "similar"]
    train(*recipe, "--output_dir", tmp_path / "straight")
    resume_from = copy_checkpoint(tmp_path / "straight", 3, tmp_path / "resumed")
    train(*recipe, "--output_dir", tmp_path / "resumed", "--resume_from_checkpoint", resume_from)
    assert_same_run(tmp_path / "straight", tmp_path / "resumed", 6)

    # the saved model is the average at the best validation step, not the raw weights of that step
    best_step = json.loads((tmp_path / "straight" / "metrics.json").read_text())["best_step"]
    saved = safetensors.torch.load_file(str(tmp_path / "straight" / "model.safetensors"))
    step_dir = checkpoint(tmp_path / "straight", best_step)
    raw = safetensors.torch.load_file(str(step_dir / "model.safetensors"))
    average = torch.load(step_dir / "custom_checkpoint_0.pkl", weights_only=True)
    for name, value in average["shadow"].items():
        assert torch.equal(saved[name], value), name
    assert any(not torch.equal(saved[name], raw[name]) for name in average["shadow"])
    assert (tmp_path / "straight" / "report" / "report.json").is_file()
    assert "## Failure modes" in (tmp_path / "straight" / "README.md").read_text()


def test_held_out_combinations_never_reach_the_training_split():
    held_out = load_demo_dataset(140, 20, 20, seed=5, hold_out=True)
    plain = load_demo_dataset(140, 20, 20, seed=5)
    for split in ("validation", "test"):
        assert held_out[split]["id"] == plain[split]["id"]
        assert held_out[split]["captions"] == plain[split]["captions"]
    seed = int(np.random.SeedSequence([5, 0]).generate_state(1)[0])
    train_motions = generate_demo_motions(140, seed, hold_out=True)
    assert [m["captions"] for m in train_motions] == held_out["train"]["captions"]
    assert not any(is_held_out(m["action"], m["variant"]) for m in train_motions)
    # without holding out, the same draw does contain them: the filter is doing the work
    assert any(is_held_out(m["action"], m["variant"]) for m in generate_demo_motions(140, seed))
    assert is_held_out("wave", {"side": "right", "speed": "slow"})
    assert not is_held_out("wave", {"side": "left", "speed": "slow"})


def test_mirroring_is_on_by_default_only_where_the_skeleton_has_sides(tmp_path, caplog):
    from test_training import SPLITS, write_motion_folder

    write_motion_folder(tmp_path / "mocap", 4, SPLITS)
    # four joints in five chains named without sides: nothing to swap
    chains = [["a", "b"], ["b", "c"], ["c", "d"], ["a", "c"], ["b", "d"]]
    skeleton = {"name": "sideless", "joint_names": ["a", "b", "c", "d"], "chains": chains}
    (tmp_path / "sideless.json").write_text(json.dumps(skeleton))
    data = [*TINY, "--dataset_name", tmp_path / "mocap", "--skeleton", tmp_path / "sideless.json", "--max_steps", "1"]
    with caplog.at_level("INFO", logger="motionpatches.training.train"):
        train(*data, "--output_dir", tmp_path / "default")
    assert "mirroring off: " in caplog.text and "left/right" in caplog.text
    assert (tmp_path / "default" / "metrics.json").is_file()
    with pytest.raises(SystemExit, match=r"--mirror_prob 0.5: .*left/right"):
        train(*data, "--mirror_prob", "0.5", "--output_dir", tmp_path / "asked")
    assert not (tmp_path / "asked" / "metrics.json").exists()
