"""Folders of mixed motion files, and nothing lost: every entry point reads each file on its own, skips (and
reports) the ones it cannot use, or stops at the first with `--on_error raise`; outputs are written whole."""

import argparse
import csv
import json
import os
import shutil

import numpy as np
import pytest
from bvh_samples import bvh_text

from motionpatches import load_bvh
from motionpatches.arguments import add_motion_file_arguments, motion_file_options
from motionpatches.processors.feature_extraction_motionpatches import resample_frame_rate
from motionpatches.processors.motion_files import MotionFileError
from motionpatches.processors.motion_readers import MotionFileOptions
from motionpatches.skipped import SkippedFiles, read_positions, report_path, try_file
from motionpatches.training.data.motion_folder import load_motion_folder

BAD = ("corrupt.bvh", "nan.npy", "truncated.npz")


def report_of(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def assert_reports_the_bad_files(report: dict, bad: dict, text: str, read: int) -> None:
    """The written report and the printed `text` both name each bad file with its reason."""
    assert report["read"] == read and report["skipped"] == len(bad)
    listed = {os.path.basename(entry["path"]): entry for entry in report["files"]}
    assert set(listed) == set(bad)
    assert listed["nan.npy"]["reason"] == "NaN or inf" and listed["corrupt.bvh"]["reason"] == "malformed BVH file"
    assert listed["truncated.npz"]["reason"] and "truncated.npz" in listed["truncated.npz"]["message"]
    assert f"read {read} motion files, skipped {len(bad)}" in text
    for entry in listed.values():
        assert f"{entry['path']}" in text and entry["reason"] in text


# ----------------------------------------------------------------------------- the record
def test_a_record_counts_each_file_once_and_sums_up(tmp_path):
    skipped = SkippedFiles()
    skipped.add("a.npy", "NaN or inf", "a.npy holds NaN or inf", where="train.txt")
    skipped.add("a.npy", "NaN or inf", "a.npy holds NaN or inf", where="test.txt")  # listed again: once
    other = SkippedFiles()
    other.read = 4
    other.add("b.bvh", "malformed BVH file", "b.bvh, line 3: no ROOT")
    other.add("c.npy", "NaN or inf", "c.npy holds NaN or inf")
    skipped.merge(other)
    assert len(skipped) == 3 and "b.bvh" in skipped and skipped.read == 4
    assert skipped.summary() == "read 4 motion files, skipped 3 (2 NaN or inf, 1 malformed BVH file)"
    assert skipped.lines()[0] == "  a.npy [train.txt]: NaN or inf: holds NaN or inf"
    skipped.write_report(tmp_path / "r.json")
    assert report_of(tmp_path / "r.json") == skipped.to_dict()
    assert skipped.to_dict()["files"][1] == {
        "path": "b.bvh",
        "reason": "malformed BVH file",
        "message": "b.bvh, line 3: no ROOT",
        "where": "",
    }
    assert report_path(tmp_path / "e.npz") == str(tmp_path / "e.skipped.json")


def test_any_failure_is_recorded_or_raised_naming_the_file(tmp_path, write_bad_motions):
    bad = write_bad_motions(tmp_path)
    skipped = SkippedFiles()
    assert skipped.attempt(bad["nan.npy"], read_positions, bad["nan.npy"]) is None
    assert skipped.attempt("x.npz", int, "not a number", where="clips.csv, line 2") is None  # a foreign error type
    assert [(e.reason, e.where) for e in skipped.files] == [("NaN or inf", ""), ("ValueError", "clips.csv, line 2")]
    assert "first at frame 7, joint 3" in skipped.files[0].message
    with pytest.raises(MotionFileError, match=r"^clips.csv, line 4: .*corrupt.bvh") as error:
        try_file(bad["corrupt.bvh"], read_positions, bad["corrupt.bvh"], on_error="raise", where="clips.csv, line 4")
    assert error.value.path == bad["corrupt.bvh"]
    with pytest.raises(ValueError, match="on_error='ignore'"):
        try_file("a.npy", read_positions, "a.npy", on_error="ignore")


def test_a_crash_while_writing_a_report_leaves_the_previous_one(tmp_path, monkeypatch):
    skipped = SkippedFiles()
    skipped.write_report(tmp_path / "r.skipped.json")
    before = (tmp_path / "r.skipped.json").read_bytes()
    skipped.add("a.npy", "NaN or inf", "a.npy holds NaN or inf")

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)  # the new report is complete on disk, not yet in place
    with pytest.raises(KeyboardInterrupt):
        skipped.write_report(tmp_path / "r.skipped.json")
    monkeypatch.undo()
    assert (tmp_path / "r.skipped.json").read_bytes() == before and os.listdir(tmp_path) == ["r.skipped.json"]


# ----------------------------------------------------------------------------- the options
def test_the_motion_file_flags_become_the_readers_options(capsys):
    parser = argparse.ArgumentParser()
    add_motion_file_arguments(parser)
    args = parser.parse_args(["--bvh_scale", "0.01", "--bvh_up_axis", "Z", "--motion_format", "features"])
    options = motion_file_options(args)
    assert (options.bvh_scale, options.bvh_up_axis, options.motion_format) == (0.01, "z", "features")
    assert args.on_error == "skip" and motion_file_options(parser.parse_args([])).bvh_scale is None
    for flags in (["--bvh_scale", "0"], ["--bvh_scale", "nan"], ["--on_error", "ignore"], ["--bvh_up_axis", "w"]):
        with pytest.raises(SystemExit):
            parser.parse_args(flags)
        assert flags[0] in capsys.readouterr().err


def test_the_flags_moved_but_old_imports_still_work():
    from motionpatches import arguments, cli, loading

    assert loading.add_trust_remote_code_argument is arguments.add_trust_remote_code_argument
    assert cli.output_path is arguments.output_path and cli.positive_fps is arguments.positive_fps


# ----------------------------------------------------------------------------- motionpatches embed / search
@pytest.fixture
def mixed_folder(tmp_path, sample_motion, write_bad_motions):
    """motions/: two .npy (the model's SMPL-22), one BVH (its own rig) and the three bad files."""
    folder = tmp_path / "motions"
    folder.mkdir()
    for index, name in enumerate(("good_a.npy", "good_c.npy")):
        np.save(folder / name, sample_motion[index * 20 : index * 20 + 80])
    (folder / "good_b.bvh").write_text(bvh_text(frames=50, fps=20.0, seed=1))
    return folder, write_bad_motions(folder)


def test_embed_keeps_the_good_files_and_reports_the_bad_ones(mixed_folder, saved_tiny_model, cli, tmp_path):
    folder, bad = mixed_folder
    clean = tmp_path / "clean"
    shutil.copytree(folder, clean, ignore=shutil.ignore_patterns(*BAD))
    assert cli("embed", clean, "--model", saved_tiny_model, "--out", tmp_path / "clean.npz").returncode == 0

    proc = cli("embed", folder, "--model", saved_tiny_model, "--out", tmp_path / "e.npz")
    assert proc.returncode == 0, proc.stderr
    saved, expected = np.load(tmp_path / "e.npz"), np.load(tmp_path / "clean.npz")
    names = ["good_a.npy", "good_b.bvh", "good_c.npy"]
    assert list(saved["files"]) == [str(folder / name) for name in names]
    np.testing.assert_allclose(saved["embeddings"], expected["embeddings"], atol=1e-6)
    assert_reports_the_bad_files(report_of(tmp_path / "e.skipped.json"), bad, proc.stderr, read=3)
    assert f"wrote {tmp_path / 'e.skipped.json'}" in proc.stdout


def test_search_lists_the_skipped_files_apart_from_the_results(mixed_folder, saved_tiny_model, cli):
    folder, bad = mixed_folder
    proc = cli("search", folder, "--model", saved_tiny_model, "--query", "a person waves", "--top_k", "10")
    assert proc.returncode == 0, proc.stderr
    ranked = [line.split()[-1] for line in proc.stdout.splitlines()[1:]]
    assert sorted(os.path.basename(path) for path in ranked) == ["good_a.npy", "good_b.bvh", "good_c.npy"]
    assert "read 3 motion files, skipped 3" in proc.stderr and all(path in proc.stderr for path in bad.values())


def test_on_error_raise_stops_at_the_first_bad_file_and_writes_nothing(mixed_folder, saved_tiny_model, cli, tmp_path):
    folder, bad = mixed_folder
    proc = cli("embed", folder, "--model", saved_tiny_model, "--out", tmp_path / "e.npz", "--on_error", "raise")
    assert proc.returncode == 2 and bad["corrupt.bvh"] in proc.stderr  # the first bad file in sorted order
    assert "nan.npy" not in proc.stderr and not (tmp_path / "e.npz").exists()


def test_a_file_the_processor_refuses_does_not_lose_its_batch(mixed_folder, saved_tiny_model, cli, tmp_path):
    """Millimetres read as metres pass the reader but not the processor's magnitude check, which refuses the
    whole batch; the batch is embedded again file by file."""
    folder, _ = mixed_folder
    for name in BAD:
        os.remove(folder / name)
    np.save(folder / "good_d_mm.npy", np.load(folder / "good_a.npy") * 1e7)
    proc = cli("embed", folder, "--model", saved_tiny_model, "--out", tmp_path / "e.npz", "--batch_size", "8")
    assert proc.returncode == 0, proc.stderr
    assert [os.path.basename(f) for f in np.load(tmp_path / "e.npz")["files"]] == [
        "good_a.npy",
        "good_b.bvh",
        "good_c.npy",
    ]
    report = report_of(tmp_path / "e.skipped.json")
    assert [(os.path.basename(e["path"]), e["reason"]) for e in report["files"]] == [
        ("good_d_mm.npy", "refused by the processor")
    ]
    assert "after normalisation" in report["files"][0]["message"]


def test_nothing_readable_is_an_error_that_lists_every_file(tmp_path, saved_tiny_model, cli, write_bad_motions):
    bad = write_bad_motions(tmp_path / "bad")
    proc = cli("embed", tmp_path / "bad", "--model", saved_tiny_model, "--out", tmp_path / "e.npz")
    assert proc.returncode == 2 and "none of the 3 motion files could be read" in proc.stderr
    assert all(path in proc.stderr for path in bad.values()) and not (tmp_path / "e.npz").exists()


def test_the_motion_file_flags_reach_every_file_the_command_reads(
    mixed_folder, saved_tiny_model, cli, tmp_path, monkeypatch
):
    import motionpatches.skipped

    seen, read = [], motionpatches.skipped.read_motion_file
    monkeypatch.setattr(
        motionpatches.skipped, "read_motion_file", lambda path, options: seen.append(options) or read(path, options)
    )
    flags = ["--bvh_scale", "0.02", "--bvh_up_axis", "y", "--motion_format", "joints", "--body_model_dir", tmp_path]
    proc = cli("embed", mixed_folder[0], "--model", saved_tiny_model, "--out", tmp_path / "e.npz", *flags)
    assert proc.returncode == 0, proc.stderr
    expected = MotionFileOptions(bvh_scale=0.02, bvh_up_axis="y", motion_format="joints", body_model_dir=str(tmp_path))
    assert len(seen) >= 6 and all(options == expected for options in seen)  # the scan reads each of the 6 files


def _flags(*flags) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_motion_file_arguments(parser)
    return parser.parse_args(flags)


def bvh_rows_scaled(data, root, scale: float) -> np.ndarray:
    """The first train row as the default reading gives it, with the BVH lengths at `scale` metres per unit."""
    take = load_bvh(root / "new_joints" / "take0.bvh")
    return data["train"].with_format("numpy")[0]["motion"] * scale / take.scale


# ----------------------------------------------------------------------------- dataset folders
@pytest.fixture
def mixed_dataset(tmp_path, write_bad_motions):
    """A HumanML3D-layout folder whose new_joints/ mixes BVH takes, a .npy in their rig and the three bad files;
    train lists the good motions, test lists all six."""
    root = tmp_path / "mocap"
    joints = root / "new_joints"
    joints.mkdir(parents=True)
    for index in range(2):
        (joints / f"take{index}.bvh").write_text(bvh_text(frames=60 + 10 * index, fps=30.0, seed=index))
    np.save(joints / "pose2.npy", load_bvh(joints / "take1.bvh").positions[::-1].copy())
    bad = write_bad_motions(joints, num_joints=21)
    (root / "texts").mkdir()
    ids = ["corrupt", "take0", "nan", "take1", "truncated", "pose2"]
    for index, motion_id in enumerate(ids):
        (root / "texts" / f"{motion_id}.txt").write_text(f"a person dances {index}#x#0.0#0.0\n")
    (root / "train.txt").write_text("take0\ntake1\npose2\n")
    (root / "test.txt").write_text("\n".join(ids) + "\n")
    return root, bad


def test_a_dataset_folder_mixes_formats_and_records_what_it_skips(mixed_dataset):
    root, bad = mixed_dataset
    skipped = SkippedFiles()
    data = load_motion_folder(str(root), skipped=skipped)  # the first readable BVH gives the rig
    assert list(data["test"]["id"]) == ["take0", "take1", "pose2"] and list(data["train"]["id"]) == list(
        data["test"]["id"]
    )
    assert skipped.read == 3 and {os.path.basename(e.path) for e in skipped.files} == set(bad)
    assert {e.where for e in skipped.files} == {str(root / "test.txt")}
    assert data["test"].with_format("numpy")[2]["motion"].shape[1] == 21


def test_a_dataset_folder_raises_at_the_first_bad_file_when_asked(mixed_dataset):
    root, bad = mixed_dataset
    with pytest.raises(MotionFileError, match=r"test.txt: .*corrupt.bvh") as error:
        load_motion_folder(str(root), on_error="raise")
    assert error.value.path == bad["corrupt.bvh"]


def test_bvh_options_reach_the_dataset_reader(mixed_dataset):
    root, _ = mixed_dataset
    options = motion_file_options(_flags("--bvh_scale", "0.005"))
    row = load_motion_folder(str(root), options=options)["train"].with_format("numpy")[0]
    assert row["id"] == "take0"
    expected = bvh_rows_scaled(load_motion_folder(str(root)), root, 0.005)
    np.testing.assert_allclose(row["motion"], expected, rtol=1e-4, atol=1e-6)


def test_eval_retrieval_evaluates_the_good_motions_and_reports_the_bad(
    mixed_dataset, saved_tiny_model, tmp_path, capsys
):
    from motionpatches.training.eval_retrieval import main

    root, bad = mixed_dataset
    out = tmp_path / "out"
    out.mkdir()
    args = ["--model_name_or_path", saved_tiny_model, "--dataset_name", root, "--split", "test"]
    main([str(a) for a in [*args, "--protocol", "tmr-all", "--output_file", out / "metrics.json"]])
    captured = capsys.readouterr()
    assert "test split, 3 motions" in captured.out and f"wrote {out / 'metrics.skipped.json'}" in captured.out
    assert sorted(os.listdir(out)) == ["metrics.json", "metrics.skipped.json"]
    metrics = report_of(out / "metrics.json")
    assert metrics["t2m/R@3"] == metrics["m2t/R@3"] == 100.0  # three motions: every rank is 3 or better
    assert_reports_the_bad_files(report_of(out / "metrics.skipped.json"), bad, captured.err, read=3)

    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in [*args, "--on_error", "raise", "--output_file", out / "again.json"]])
    assert bad["corrupt.bvh"] in str(exit_.value.code) and "nan.npy" not in str(exit_.value.code)
    assert sorted(os.listdir(out)) == ["metrics.json", "metrics.skipped.json"]


def test_the_trainer_passes_its_motion_file_flags_to_the_loader(mixed_dataset):
    from motionpatches.training.params import parse_args
    from motionpatches.training.train import load_data

    root, bad = mixed_dataset
    args = parse_args(["--dataset_name", str(root), "--on_error", "raise"])
    with pytest.raises(SystemExit, match="corrupt.bvh"):
        load_data(args)
    args = parse_args(["--dataset_name", str(root), "--bvh_scale", "0.005"])
    data = load_data(args)
    assert len(data["test"]) == 3 and args.skeleton.num_joints == 21
    expected = bvh_rows_scaled(load_motion_folder(str(root)), root, 0.005)
    np.testing.assert_allclose(data["train"].with_format("numpy")[0]["motion"], expected, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- zero-shot classification
@pytest.fixture
def clips_csv(tmp_path, sample_motion, write_bad_motions):
    """clips.csv listing three good .npy motions between the three bad files."""
    bad = write_bad_motions(tmp_path)
    rows = [["file", "label"]]
    for index, label in enumerate(("walks", "waves", "jumps")):
        np.save(tmp_path / f"good{index}.npy", sample_motion[index * 15 : index * 15 + 60])
        rows += [[f"good{index}.npy", label], [BAD[index], label]]
    with open(tmp_path / "clips.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return tmp_path / "clips.csv", bad


def zero_shot(*args):
    from motionpatches.training.eval_zero_shot import main

    return main([str(arg) for arg in args])


def test_eval_zero_shot_scores_the_good_clips_and_reports_the_bad(clips_csv, saved_tiny_model, tmp_path, capsys):
    csv_path, bad = clips_csv
    zero_shot("--model_name_or_path", saved_tiny_model, "--csv", csv_path, "--output_file", tmp_path / "r.json")
    captured = capsys.readouterr()
    report = report_of(tmp_path / "r.json")
    assert report["num_samples"] == 3 and report["ids"] == ["good0.npy", "good1.npy", "good2.npy"]
    skipped = report_of(tmp_path / "r.skipped.json")
    assert_reports_the_bad_files(skipped, bad, captured.err, read=3)
    lines = {os.path.basename(e["path"]): e["where"] for e in skipped["files"]}
    assert lines == {name: f"{csv_path}, line {3 + 2 * index}" for index, name in enumerate(BAD)}


def test_eval_zero_shot_raises_at_the_first_bad_file_with_its_line(clips_csv, saved_tiny_model, tmp_path):
    csv_path, bad = clips_csv
    with pytest.raises(SystemExit) as exit_:
        zero_shot("--model_name_or_path", saved_tiny_model, "--csv", csv_path, "--on_error", "raise",
                  "--output_file", tmp_path / "r.json")  # fmt: skip
    message = str(exit_.value.code)
    assert f"{csv_path}, line 3" in message and bad["corrupt.bvh"] in message
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.skipped.json").exists()


def test_csv_bvh_clips_are_cut_at_the_files_own_rate_with_the_options(tmp_path, saved_tiny_model):
    from motionpatches.training.eval_zero_shot import load_rows, parse_args

    (tmp_path / "take.bvh").write_text(bvh_text(frames=60, fps=30.0))
    (tmp_path / "clips.csv").write_text("file,label,start,end\ntake.bvh,dances,0.5,1.5\n")
    args = parse_args(["--model_name_or_path", "unused", "--csv", str(tmp_path / "clips.csv"), "--fps", "100"])
    args.bvh_scale = 0.02
    rows = load_rows(args, SkippedFiles()).with_format("numpy")
    positions = load_bvh(tmp_path / "take.bvh", scale=0.02).positions
    # frames 15..45 at the file's 30 fps (not --fps, which is for files without a rate), then 20 fps
    np.testing.assert_allclose(rows[0]["motion"], resample_frame_rate(positions[15:45], 30.0, 20.0), atol=1e-5)
    assert rows[0]["id"] == "take.bvh#0.5#1.5"


def test_babel_joint_files_that_cannot_be_read_are_reported(tmp_path, saved_tiny_model, capsys, monkeypatch):
    import motionpatches.skipped

    reads, read = [], motionpatches.skipped.read_motion_file
    monkeypatch.setattr(
        motionpatches.skipped, "read_motion_file", lambda path, options: reads.append(path) or read(path, options)
    )
    joints = tmp_path / "joints" / "CMU"
    joints.mkdir(parents=True)
    np.save(joints / "a_poses.npy", np.random.default_rng(0).normal(size=(90, 22, 3)).astype(np.float32))
    np.save(joints / "b_poses.npy", np.zeros((90, 22, 3), np.float32))
    (joints / "b_poses.npy").write_bytes((joints / "b_poses.npy").read_bytes()[:500])
    labels = {"labels": [{"raw_label": "walk", "proc_label": "walk", "act_cat": ["walk"]}]}
    babel = {
        sid: {"feat_p": f"CMU/{name}_poses.npz", "dur": 3.0, "seq_ann": labels, "frame_ann": None}
        for sid, name in (("1", "a"), ("2", "b"))
    }
    (tmp_path / "val.json").write_text(json.dumps(babel))
    zero_shot("--model_name_or_path", saved_tiny_model, "--babel_json", tmp_path / "val.json",
              "--joints_dir", tmp_path / "joints", "--fps", "30", "--output_file", tmp_path / "r.json")  # fmt: skip
    assert report_of(tmp_path / "r.json")["num_samples"] == 1
    skipped = report_of(tmp_path / "r.skipped.json")
    assert skipped["read"] == 1 and [(e["reason"], e["where"]) for e in skipped["files"]] == [
        ("truncated file", f"{tmp_path / 'val.json'}, sequence 2")
    ]
    assert "read 1 motion files, skipped 1 (1 truncated file)" in capsys.readouterr().err
    assert sorted(os.path.basename(path) for path in reads) == ["a_poses.npy", "b_poses.npy"]  # each file once
