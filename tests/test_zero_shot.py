"""Zero-shot classification: report numbers by hand, scores against the model's own forward, a rigged model
whose right answers are known, the CSV and BABEL loaders, and the command line on a tiny saved model."""

import csv
import json
import logging
import os
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from motionpatches import MotionFileError, MotionFileOptions
from motionpatches.processors.feature_extraction_motionpatches import resample_frame_rate
from motionpatches.skipped import SkippedFiles
from motionpatches.training.data.classification import load_babel, load_label_csv
from motionpatches.training.data.demo import ACTIONS, generate_demo_motions
from motionpatches.zero_shot import (
    build_prompts,
    classification_report,
    format_confusion_matrix,
    zero_shot_scores,
)

LABELS = ["walk", "run", "jump", "kick"]
NUM_FRAMES = 64


@pytest.fixture(scope="module")
def tiny_for(tiny_model):
    """A tiny model whose tokenizer knows the prompts of `words` (and a few more words)."""
    return lambda words: tiny_model([*build_prompts(words), "sits down", "walks"], num_frames=NUM_FRAMES)


@pytest.fixture(scope="module")
def tiny(tiny_for):
    return tiny_for([*LABELS, *ACTIONS])


def ramp(num_frames, fps, num_joints=22):
    """Positions that are the time in seconds plus a per-coordinate offset: linear in time, so resampling
    and cutting can be checked against closed-form values."""
    seconds = np.arange(num_frames, dtype=np.float32) / fps
    offsets = np.arange(num_joints * 3, dtype=np.float32).reshape(num_joints, 3)
    return seconds[:, None, None] + offsets


def assert_clip(motion, start_seconds, num_frames, num_joints=22):
    """`motion` is `ramp`'s clip from `start_seconds` at 20 fps with `num_frames` frames."""
    expected = ramp(num_frames, 20.0, num_joints) + np.float32(start_seconds)
    np.testing.assert_allclose(np.asarray(motion), expected, atol=1e-5)


# --------------------------------------------------------------------------------------------- report


def test_build_prompts():
    assert build_prompts(["walk", "sit_down"]) == ["a person walk", "a person sit down"]
    assert build_prompts(["walk", "sit_down"], "{label}.", {"walk": "walks"}) == ["walks.", "sit down."]
    with pytest.raises(ValueError, match="label"):
        build_prompts(["walk"], "a person")


def test_classification_report_hand_computed():
    labels = ["walk", "run", "jump", "sit", "wave", "kick"]
    scores = np.array(
        [
            [0.9, 0.1, 0.2, 0.0, 0.3, 0.1],  # walk: right
            [0.5, 0.4, 0.1, 0.0, 0.2, 0.3],  # run: walk first, run second -> top-5 only
            [0.1, 0.2, 0.0, 0.3, 0.4, 0.5],  # jump: ranked last of six -> wrong even in the top 5
            [0.2, 0.1, 0.1, 0.0, 0.6, 0.6],  # kick: tied with wave, the earlier label wins -> top-5 only
            [0.1, 0.7, 0.2, 0.3, 0.0, 0.1],  # walk: fourth -> top-5 only
        ]
    )
    report = classification_report(scores, ["walk", "run", "jump", "kick", "walk"], labels)
    assert report["top1"] == pytest.approx(20.0)
    assert report["top5"] == pytest.approx(80.0)
    assert report["confusion_matrix"] == [
        [1, 1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 0],
    ]
    assert report["per_class_accuracy"] == {
        "walk": 50.0,
        "run": 0.0,
        "jump": 0.0,
        "sit": None,
        "wave": None,
        "kick": 0.0,
    }
    assert report["labels"] == labels and report["num_samples"] == 5
    json.dumps(report)  # the CLI writes it as is


def test_top5_with_fewer_than_five_labels_and_bad_input():
    scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]])
    report = classification_report(scores, ["a", "a"], ["a", "b", "c"])
    assert (report["top1"], report["top5"]) == (50.0, 100.0)
    with pytest.raises(ValueError, match=r"\['x', 'y'\]"):
        classification_report(scores, ["x", "y"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="shape"):
        classification_report(scores.T, ["a", "a"], ["a", "b", "c"])


def test_format_confusion_matrix():
    report = classification_report(
        np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), ["walk", "sit_down", "sit_down"], ["walk", "sit_down"]
    )
    assert format_confusion_matrix(report).splitlines() == [
        "true \\ predicted 0 1  acc %",
        "0 walk           1 0  100.0",
        "1 sit_down       1 1   50.0",
    ]


# --------------------------------------------------------------------------------------------- scores


def test_scores_equal_the_models_own_cosines(tiny, sample_motion, sample_motion_path):
    model, processor = tiny
    motions = [
        sample_motion[:90],
        sample_motion_path,
        sample_motion[10:40],
        sample_motion[::-1].copy(),
        sample_motion[5:],
    ]
    labels = ["walk", "sit_down", "kick"]
    scores = zero_shot_scores(model, processor, iter(motions), labels, batch_size=2, motion_fps=30)

    inputs = processor(text=build_prompts(labels), motions=motions, motion_fps=30, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    expected = (out.motion_embeds @ out.text_embeds.T).numpy()
    assert scores.shape == (5, 3)
    np.testing.assert_allclose(scores, expected, atol=1e-5, rtol=0)
    assert np.abs(scores - expected).max() < np.abs(expected).max() / 100  # the comparison is not trivially loose


def test_rigged_model_gets_every_motion_right(monkeypatch, tiny_for):
    """Towers replaced by one-hot embeddings with a known answer: the pipeline must read it back exactly."""
    model, processor = tiny_for(LABELS)
    dimension = {"walk": 7, "run": 2, "jump": 11, "kick": 4}  # where each class's embedding points
    motion_code = {"jump": 1.0, "walk": 2.0, "kick": 3.0, "run": 4.0}  # the constant every position holds
    word_ids = {processor.tokenizer.convert_tokens_to_ids(label): label for label in LABELS}

    def one_hot(classes, scales):
        embeds = torch.zeros(len(classes), model.config.projection_dim)
        embeds[torch.arange(len(classes)), [dimension[c] for c in classes]] = torch.as_tensor(
            scales, dtype=torch.float32
        )
        return BaseModelOutputWithPooling(pooler_output=embeds)

    def text_features(input_ids, **kwargs):
        classes = [next(word_ids[int(t)] for t in row if int(t) in word_ids) for row in input_ids]
        return one_hot(classes, [3.0] * len(classes))

    def motion_features(motion_values, **kwargs):
        code_to_class = {code: label for label, code in motion_code.items()}
        codes = motion_values[:, 0, 0, 0].round().tolist()  # no z-score here: a constant motion stays constant
        return one_hot([code_to_class[c] for c in codes], [0.5 + i for i in range(len(codes))])

    monkeypatch.setattr(model, "get_text_features", text_features)
    monkeypatch.setattr(model, "get_motion_features", motion_features)
    true_labels = ["jump", "walk", "kick", "run", "walk", "jump", "run"]
    motions = [np.full((30, 22, 3), motion_code[label], dtype=np.float32) for label in true_labels]

    scores = zero_shot_scores(model, processor, motions, LABELS, batch_size=3)
    expected = np.array([[float(label == column) for column in LABELS] for label in true_labels])
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    report = classification_report(scores, true_labels, LABELS)
    assert report["top1"] == 100.0
    assert report["confusion_matrix"] == [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]]


# --------------------------------------------------------------------------------------------- loaders


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_label_csv_whole_motions(tmp_path):
    (tmp_path / "motions").mkdir()
    (tmp_path / "lists").mkdir()
    np.save(tmp_path / "motions" / "a.npy", ramp(60, 30.0))
    np.save(tmp_path / "motions" / "b.npy", ramp(21, 30.0))
    write_csv(tmp_path / "lists" / "clips.csv", [["file", "label"], ["a.npy", "walk"], ["b.npy", "run"]])
    data = load_label_csv(tmp_path / "lists" / "clips.csv", motions_dir=tmp_path / "motions", fps=30.0)
    assert data.column_names == ["id", "motion", "label"]
    assert list(data["id"]) == ["a.npy", "b.npy"] and list(data["label"]) == ["walk", "run"]
    rows = data.with_format("numpy")
    assert_clip(rows[0]["motion"], 0.0, 40)  # 60 frames at 30 fps span 59/30 s: 40 frames at 20 fps
    assert_clip(rows[1]["motion"], 0.0, 14)


def test_label_csv_with_start_and_end(tmp_path):
    np.save(tmp_path / "a.npy", ramp(60, 20.0, num_joints=21))
    write_csv(
        tmp_path / "cut.csv",
        [
            ["file", "label", "start", "end"],
            ["a.npy", "walk", "0.5", "1.5"],
            ["a.npy", "wave", "", ""],
            ["a.npy", "turn", "2.5", ""],
        ],
    )
    data = load_label_csv(tmp_path / "cut.csv")  # motions_dir: the CSV's folder; 20 fps: no resampling
    assert list(data["id"]) == ["a.npy#0.5#1.5", "a.npy", "a.npy#2.5#"]
    rows = data.with_format("numpy")
    assert_clip(rows[0]["motion"], 0.5, 20, num_joints=21)
    assert_clip(rows[1]["motion"], 0.0, 60, num_joints=21)
    assert_clip(rows[2]["motion"], 2.5, 10, num_joints=21)


def test_label_csv_errors(tmp_path):
    np.save(tmp_path / "a.npy", ramp(20, 20.0))
    write_csv(tmp_path / "missing.csv", [["file", "label"], ["a.npy", "walk"], ["nope.npy", "run"]])
    with pytest.raises(FileNotFoundError, match="line 3: .*nope.npy"):
        load_label_csv(tmp_path / "missing.csv")
    write_csv(tmp_path / "header.csv", [["path", "label"], ["a.npy", "walk"]])
    with pytest.raises(ValueError, match="file"):
        load_label_csv(tmp_path / "header.csv")
    write_csv(tmp_path / "empty.csv", [["file", "label", "start", "end"], ["a.npy", "walk", "5", "6"]])
    with pytest.raises(ValueError, match="no frames"):
        load_label_csv(tmp_path / "empty.csv")


def test_label_csv_raises_by_default_or_skips_and_records_unusable_files(tmp_path, caplog):
    np.save(tmp_path / "a.npy", ramp(40, 20.0))
    nan = ramp(40, 20.0)
    nan[5, 2, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "kit.npy", ramp(40, 20.0, num_joints=21))
    clips = [["a.npy", "walk"], ["nan.npy", "run"], ["nope.npy", "jump"], ["kit.npy", "kick"], ["a.npy", "wave"]]
    write_csv(tmp_path / "clips.csv", [["file", "label"], *clips])
    csv_path = str(tmp_path / "clips.csv")
    with pytest.raises(MotionFileError, match=r"clips\.csv, line 3: .*nan\.npy holds NaN"):
        load_label_csv(csv_path)  # the list is the user's own: the first unusable file stops it

    skipped = SkippedFiles()
    data = load_label_csv(csv_path, on_error="skip", skipped=skipped)
    assert list(data["id"]) == ["a.npy", "a.npy"] and list(data["label"]) == ["walk", "wave"]
    assert_clip(data.with_format("numpy")[1]["motion"], 0.0, 40)
    assert skipped.read == 1
    assert [(os.path.basename(e.path), e.reason, e.where) for e in skipped.files] == [
        ("nan.npy", "NaN or inf", f"{csv_path}, line 3"),
        ("nope.npy", "no motion file", f"{csv_path}, line 4"),
        ("kit.npy", "wrong shape", f"{csv_path}, line 5"),  # the first file's 22 joints decide
    ]
    with caplog.at_level(logging.WARNING):
        load_label_csv(csv_path, on_error="skip")  # no record given: the log names them
    assert "read 1 motion files, skipped 3" in caplog.text and str(tmp_path / "nope.npy") in caplog.text

    write_csv(tmp_path / "bad.csv", [["file", "label"], ["nan.npy", "run"]])
    with pytest.raises(ValueError, match=r"bad\.csv: no clip could be loaded; read 0 motion files, skipped 1"):
        load_label_csv(tmp_path / "bad.csv", on_error="skip")


BABEL = {
    "11": {
        "feat_p": "CMU/CMU/01/01_01_poses.npz",
        "dur": 4.0,
        "seq_ann": {
            "labels": [{"raw_label": "walk and wave", "proc_label": "walk and wave", "act_cat": ["walk", "wave"]}]
        },
        "frame_ann": {
            "labels": [
                {
                    "raw_label": "Walking",
                    "proc_label": "walk",
                    "act_cat": ["walk", "forward movement"],
                    "start_t": 0.5,
                    "end_t": 2.0,
                },
                {"raw_label": "turn", "proc_label": "turn", "act_cat": ["turn"], "start_t": 1.0, "end_t": 1.2},
                {
                    "raw_label": "waving",
                    "proc_label": "wave",
                    "act_cat": ["wave", "arm movements"],
                    "start_t": 2.0,
                    "end_t": 3.5,
                },
            ]
        },
    },
    "12": {
        "feat_p": "CMU/CMU/02/02_01_poses.npz",
        "dur": 3.0,
        "seq_ann": {"labels": [{"raw_label": "sitting down", "proc_label": "sit down", "act_cat": ["sit"]}]},
        "frame_ann": None,
    },
    "13": {
        "feat_p": "CMU/CMU/03/03_01_poses.npz",
        "dur": 2.0,
        "seq_ann": {"labels": [{"raw_label": "jog", "proc_label": "jog", "act_cat": ["run"]}]},
        "frame_ann": {
            "labels": [{"raw_label": "jog", "proc_label": "jog", "act_cat": ["run"], "start_t": 0.0, "end_t": 2.0}]
        },
    },
    "14": {
        "feat_p": "CMU/CMU/04/04_01_poses.npz",
        "dur": 2.0,
        "seq_ann": {
            "labels": [{"raw_label": "stand then jump", "proc_label": "stand then jump", "act_cat": ["stand"]}]
        },
        "frame_ann": {
            "labels": [
                {"raw_label": "stand", "proc_label": "stand", "act_cat": ["stand"], "start_t": 0.0, "end_t": 1.0},
                {"raw_label": "jump", "proc_label": "jump", "act_cat": ["jump"], "start_t": 1.0, "end_t": 2.0},
            ]
        },
    },
}


@pytest.fixture()
def babel(tmp_path):
    """BABEL 30 fps joints for sequences 11, 12 and 14 (13's file is missing; 14 has NaN at 1.33 s)."""
    joints = tmp_path / "joints"
    for sid, frames in (("11", 120), ("12", 90), ("14", 60)):
        path = joints / BABEL[sid]["feat_p"].replace(".npz", ".npy")
        path.parent.mkdir(parents=True)
        motion = ramp(frames, 30.0)
        if sid == "14":
            motion[40, 3, 1] = np.nan
        np.save(path, motion)
    (tmp_path / "val.json").write_text(json.dumps(BABEL))
    return tmp_path / "val.json", joints


def test_babel_segments(babel, caplog):
    babel_json, joints = babel
    with caplog.at_level(logging.WARNING, logger="motionpatches.data"):
        data = load_babel(babel_json, joints, fps=30.0)
    assert list(data["id"]) == ["11#0", "11#2", "12#0", "14#0"]
    assert list(data["label"]) == ["walk", "wave", "sit down", "stand"]
    rows = data.with_format("numpy")
    assert_clip(rows[0]["motion"], 0.5, 30)  # frames 15..60 at 30 fps -> 30 frames at 20 fps
    assert_clip(rows[1]["motion"], 2.0, 30)  # frames 60..105
    assert_clip(rows[2]["motion"], 0.0, 60)  # the whole 3 s sequence
    assert_clip(rows[3]["motion"], 0.0, 20)  # 14's NaN lies in the jump, not in the stand
    assert "4 segments; skipped 1 (too short), 1 (no motion file), 1 (NaN or inf)" in caplog.text


def test_babel_label_options(babel, caplog):
    babel_json, joints = babel
    data = load_babel(babel_json, joints, fps=30.0, label_key="act_cat", min_seconds=0.1)
    assert list(data["id"]) == ["11#0", "11#1", "11#2", "12#0", "14#0"]
    assert list(data["label"]) == ["walk", "turn", "wave", "sit", "stand"]
    with caplog.at_level(logging.WARNING, logger="motionpatches.data"):
        data = load_babel(babel_json, joints, fps=30.0, use_sequence_labels=True)
    assert list(data["id"]) == ["11#0", "12#0"] and list(data["label"]) == ["walk and wave", "sit down"]
    assert_clip(data.with_format("numpy")[0]["motion"], 0.0, 80)  # all 4 s
    assert "2 segments; skipped 1 (no motion file), 1 (NaN or inf)" in caplog.text
    with pytest.raises(ValueError, match="label_key"):
        load_babel(babel_json, joints, fps=30.0, label_key="act")


def test_babel_records_each_file_it_cannot_read_once_with_its_sequence(babel):
    """A truncated file costs its sequence, recorded with where it is listed; 14's NaN costs only a segment."""
    babel_json, joints = babel
    truncated = joints / BABEL["12"]["feat_p"].replace(".npz", ".npy")
    truncated.write_bytes(truncated.read_bytes()[:300])
    skipped = SkippedFiles()
    data = load_babel(babel_json, joints, fps=30.0, skipped=skipped)
    assert list(data["id"]) == ["11#0", "11#2", "14#0"]
    assert skipped.read == 2  # 11 and 14
    assert [(e.path, e.reason, e.where) for e in skipped.files] == [
        (str(truncated), "truncated file", f"{babel_json}, sequence 12"),
        (str(joints / "CMU/CMU/03/03_01_poses.npy"), "no motion file", f"{babel_json}, sequence 13"),
    ]
    with pytest.raises(MotionFileError, match=r"val\.json, sequence 12: .*02_01_poses\.npy") as error:
        load_babel(babel_json, joints, fps=30.0, on_error="raise")
    assert error.value.path == str(truncated)


@pytest.fixture()
def babel_amass(tmp_path):
    """BABEL's split above over AMASS SMPL-H files at 60 fps, unpacked as `feat_p` says (<amass>/CMU/CMU/...),
    with a synthetic female SMPL-H model: 13's file is missing, 14's poses are NaN at 1.33 s."""
    pytest.importorskip("smplx", reason="the smpl extra is in dev")
    from smpl_samples import write_amass, write_body_model

    amass, models = tmp_path / "amass", tmp_path / "body_models"
    files = {}
    for sid, frames in (("11", 240), ("12", 180), ("14", 120)):
        files[sid] = write_amass(amass / BABEL[sid]["feat_p"], "smplh", frames=frames, seed=int(sid), fps=60.0)
    files["14"]["poses"][80] = np.nan
    np.savez(amass / BABEL["14"]["feat_p"], **files["14"])
    model = write_body_model(models / "smplh" / "female" / "model.npz", "smplh")
    (tmp_path / "val.json").write_text(json.dumps(BABEL))
    return tmp_path / "val.json", amass, MotionFileOptions(body_model_dir=str(models)), files, model


def test_babel_reads_amass_parameters_with_body_models(babel_amass, caplog):
    from smpl_samples import expected_joints

    babel_json, amass, options, files, model = babel_amass
    with caplog.at_level(logging.WARNING, logger="motionpatches.data"):
        data = load_babel(babel_json, amass_dir=amass, file_options=options)
    assert list(data["id"]) == ["11#0", "11#2", "12#0", "14#0"]
    assert list(data["label"]) == ["walk", "wave", "sit down", "stand"]
    assert "4 segments; skipped 1 (too short), 1 (no motion file), 1 (NaN or inf)" in caplog.text
    rows = data.with_format("numpy")
    joints = expected_joints("smplh", model, files["11"])[:, :22]
    # walk: 0.5..2.0 s, frames 30..120 at the file's 60 fps, brought to 20 fps
    np.testing.assert_allclose(rows[0]["motion"], resample_frame_rate(joints[30:120], 60.0, 20.0), atol=1e-5)
    assert len(rows[2]["motion"]) == 60  # 12's whole 3 s

    # the AMASS folder as joints_dir, unpacked one level higher, and another joint set
    higher = amass.parent / "amass_higher"
    os.rename(amass / "CMU", higher)  # <higher>/CMU/01/01_01_poses.npz
    again = load_babel(babel_json, higher, file_options=options)
    np.testing.assert_array_equal(again.with_format("numpy")[0]["motion"], rows[0]["motion"])
    hands = load_babel(babel_json, amass_dir=higher, file_options=replace(options, smpl_joints="smpl24"))
    assert hands.with_format("numpy")[0]["motion"].shape == (30, 24, 3)


def test_babel_with_body_models_still_reads_joint_files(babel):
    babel_json, joints = babel
    options = MotionFileOptions(body_model_dir=str(joints.parent / "no_models"))
    data = load_babel(babel_json, joints, fps=30.0, file_options=options)
    assert list(data["id"]) == ["11#0", "11#2", "12#0", "14#0"]
    assert_clip(data.with_format("numpy")[0]["motion"], 0.5, 30)
    with pytest.raises(ValueError, match="amass_dir holds SMPL parameters, which need body models"):
        load_babel(babel_json, amass_dir=joints)
    with pytest.raises(ValueError, match="load_babel needs fps"):
        load_babel(babel_json, joints)


def test_babel_stops_when_smplx_or_the_body_models_are_missing(babel_amass, monkeypatch):
    babel_json, amass, options, *_ = babel_amass
    with pytest.raises(MotionFileError, match="female .*SMPL-H body model; none found"):
        load_babel(babel_json, amass_dir=amass, file_options=replace(options, body_model_dir=str(amass)))
    monkeypatch.setitem(sys.modules, "smplx", None)
    with pytest.raises(MotionFileError, match=r"pip install 'motionpatches\[smpl\]'"):
        load_babel(babel_json, amass_dir=amass, file_options=options)


# --------------------------------------------------------------------------------------------- command line


@pytest.fixture
def run_cli(capsys):
    """training/eval_zero_shot.py's `main`, in process (an interpreter start costs seconds); returns its stdout."""
    from motionpatches.training.eval_zero_shot import main

    def run(*args):
        main(list(args))
        return capsys.readouterr().out

    return run


def test_cli_on_a_csv_dataset(tiny, tmp_path, run_cli):
    model, processor = tiny
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    demo = generate_demo_motions(7, seed=3)
    rows = [["file", "label"]]
    for item in demo:
        np.save(tmp_path / f"{item['id']}.npy", item["motion"])
        rows.append([f"{item['id']}.npy", item["action"]])
    write_csv(tmp_path / "clips.csv", rows)
    labels = sorted({item["action"] for item in demo})
    label_text = {labels[0]: "walks"}

    stdout = run_cli(
        "--model_name_or_path",
        str(tmp_path / "model"),
        "--csv",
        str(tmp_path / "clips.csv"),
        "--label_text",
        json.dumps(label_text),
        "--batch_size",
        "3",
        "--output_file",
        str(tmp_path / "report.json"),
        "--confusion_csv",
        str(tmp_path / "cm.csv"),
        "--save_scores",
        str(tmp_path / "scores.npy"),
    )

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["labels"] == labels and report["num_samples"] == 7
    assert report["prompts"][0] == "a person walks" and report["prompts"][1:] == build_prompts(labels[1:])
    data = load_label_csv(tmp_path / "clips.csv")
    scores = zero_shot_scores(model, processor, data.with_format("numpy")["motion"], labels, label_text=label_text)
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"), scores, atol=1e-5, rtol=0)
    assert report["ids"] == list(data["id"])
    expected = classification_report(scores, list(data["label"]), labels)
    assert report["confusion_matrix"] == expected["confusion_matrix"]
    assert report["top1"] == pytest.approx(expected["top1"]) and report["top5"] == pytest.approx(expected["top5"])
    assert [sum(row) for row in report["confusion_matrix"]] == [list(data["label"]).count(label) for label in labels]
    assert f"top-1 {expected['top1']:.2f}%" in stdout and format_confusion_matrix(expected) in stdout
    with open(tmp_path / "cm.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0][1:] == labels and [[int(n) for n in row[1:]] for row in table[1:]] == expected["confusion_matrix"]


def test_cli_reads_amass_files_in_the_joints_of_an_smpl24_model(tiny, tmp_path, run_cli):
    """The model's skeleton decides the joint set of .npz files (the readers' default is HumanML3D's 22)."""
    pytest.importorskip("smplx", reason="the smpl extra is in dev")
    from smpl_samples import expected_joints, smpl24_columns, write_amass, write_female_models

    from motionpatches import MotionPatchProcessor

    model, processor = tiny
    model.save_pretrained(tmp_path / "model")
    smpl24 = MotionPatchProcessor(tokenizer=processor.tokenizer, skeleton="smpl24", num_frames=NUM_FRAMES)
    smpl24.save_pretrained(tmp_path / "model")
    models = write_female_models(tmp_path / "body_models")
    amass = write_amass(tmp_path / "take.npz", "smplh", fps=60.0)
    write_csv(tmp_path / "clips.csv", [["file", "label", "end"], ["take.npz", "walk", "0.5"]])
    run_cli("--model_name_or_path", str(tmp_path / "model"), "--csv", str(tmp_path / "clips.csv"),
            "--body_model_dir", str(tmp_path / "body_models"), "--save_scores", str(tmp_path / "scores.npy"))  # fmt: skip
    joints = expected_joints("smplh", models["smplh"], amass)[:30, smpl24_columns("smplh")]  # 0.5 s at 60 fps
    labels = ["walk"]
    expected = zero_shot_scores(model, smpl24, [resample_frame_rate(joints, 60.0, 20.0).astype(np.float32)], labels)
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"), expected, atol=1e-5, rtol=0)


def test_cli_on_the_demo_split_with_chosen_labels(tiny, tmp_path, run_cli):
    model, processor = tiny
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    run_cli(
        "--model_name_or_path",
        str(tmp_path / "model"),
        "--dataset_name",
        "demo",
        "--demo_sizes",
        "0,0,28",
        "--labels",
        "walk,sit_down,wave",
        "--output_file",
        str(tmp_path / "report.json"),
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["labels"] == ["walk", "sit_down", "wave"]
    assert report["prompts"] == ["a person walk", "a person sit down", "a person wave"]
    assert report["num_samples"] == 6  # 28 motions, two of each of the 14 actions; three actions kept


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--output_file", "{tmp}/missing/r.json"], "--output_file {tmp}/missing/r.json: the folder {tmp}/missing does not exist"),
        (["--confusion_csv", "{tmp}"], "--confusion_csv {tmp} is a folder"),
        (["--save_scores", "{tmp}/scores.csv"], "--save_scores {tmp}/scores.csv must end in .npy"),
    ],
)  # fmt: skip
def test_cli_checks_its_outputs_before_any_work(flags, message, tmp_path, run_cli):
    """The model does not exist: an error about an output means the outputs were checked first."""
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    with pytest.raises(SystemExit) as exit_:
        run_cli("--model_name_or_path", str(tmp_path / "no_model"), "--dataset_name", "demo", *flags)
    assert message.format(tmp=tmp_path) in str(exit_.value.code)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("flag, value", [("--batch_size", "0"), ("--fps", "nan"), ("--fps", "-30")])
def test_cli_refuses_numbers_out_of_range(flag, value, run_cli, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli("--model_name_or_path", "unused", "--dataset_name", "demo", flag, value)
    assert exit_.value.code == 2 and flag in capsys.readouterr().err


def test_cli_scores_get_their_suffix_and_a_crash_keeps_the_previous_ones(tiny, tmp_path, run_cli, monkeypatch):
    model, processor = tiny
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    args = ["--model_name_or_path", str(tmp_path / "model"), "--dataset_name", "demo", "--demo_sizes", "0,0,14"]
    stdout = run_cli(*args, "--save_scores", str(tmp_path / "scores"))
    assert f"wrote {tmp_path / 'scores.npy'}" in stdout
    before = (tmp_path / "scores.npy").read_bytes()
    assert np.load(tmp_path / "scores.npy").shape == (14, 14)

    def dies_half_way(file, array):
        file.write(b"\x93NUMPY half")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        run_cli(*args, "--save_scores", str(tmp_path / "scores.npy"), "--template", "someone {label}")
    assert (tmp_path / "scores.npy").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model", "scores.npy"]
