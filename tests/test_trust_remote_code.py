"""Code saved in a model folder (its `auto_map`) runs only with `--trust_remote_code`.

A foreign folder's code writes a marker file when imported: without the flag the marker must stay absent
and the error must tell about the flag, for the loader, the `motionpatches` command and every script that
loads a model. Our own folders load without the flag, and without running the code saved beside them.
"""

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from motionpatches.loading import load_model_and_processor

REPO = Path(__file__).resolve().parents[1]
# every file that loads a model for a user; train.py belongs to the training loop's owner
# every module of the package, the trainer included
LOADERS = sorted(
    str(path.relative_to(REPO))
    for folder in ("src", "training", "processors", "modeling_motionpatches", "configuration")
    for path in (REPO / folder).rglob("*.py")
)
CODE_FILES = (
    "configuration_motionpatches.py",
    "modeling_motionpatches.py",
    "processing_motionpatches.py",
    "feature_extraction_motionpatches.py",
)


def marker_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('this code ran')\n"


def write_foreign_folder(folder: Path) -> Path:
    """A model folder whose config names a class in its own code file; returns the marker that code writes."""
    folder.mkdir(parents=True)
    marker = folder.parent / f"{folder.name}.ran"
    code = marker_code(marker) + textwrap.dedent(
        """
        from transformers import PretrainedConfig, PreTrainedModel

        class ForeignConfig(PretrainedConfig):
            model_type = "foreign"

        class ForeignModel(PreTrainedModel):
            config_class = ForeignConfig
        """
    )
    (folder / "foreign_code.py").write_text(code)
    auto_map = {"AutoConfig": "foreign_code.ForeignConfig", "AutoModel": "foreign_code.ForeignModel"}
    (folder / "config.json").write_text(json.dumps({"model_type": "foreign", "auto_map": auto_map}))
    return marker


@pytest.fixture(scope="module")
def motions(tmp_path_factory, sample_motion):
    folder = tmp_path_factory.mktemp("motions")
    for i in range(3):
        np.save(folder / f"m{i}.npy", sample_motion[i * 20 :])
    return folder


@pytest.fixture(scope="module")
def own_folder(tmp_path_factory, tiny_model):
    """Our tiny model saved with its code, the code altered to write a marker if it is ever imported."""
    folder = tmp_path_factory.mktemp("own") / "model"
    model, processor = tiny_model(["a person walks", "a person waves", "a person jumps", "a person kicks"])
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    marker = folder.parent / "own.ran"
    for name in CODE_FILES:
        path = folder / name
        path.write_text(marker_code(marker) + path.read_text())
    return folder, marker


def script_runs(motions):
    """Each command that loads a model, as (name, function of (model folder, extra args) -> message or None)."""
    from motionpatches.cli import main as cli_main
    from motionpatches.training.eval_retrieval import main as retrieval_main
    from motionpatches.training.eval_zero_shot import main as zero_shot_main
    from motionpatches.training.visualize import main as visualize_main

    demo = ["--dataset_name", "demo", "--demo_sizes", "0,0,4"]
    return {
        "cli embed": lambda m, out, *a: cli_main(
            ["embed", str(motions), "--model", m, "--out", str(out / "e.npz"), *a]
        ),
        "cli search": lambda m, out, *a: cli_main(
            ["search", str(motions), "--model", m, "--query", "a person walks", *a]
        ),
        "eval_retrieval": lambda m, out, *a: retrieval_main(
            ["--model_name_or_path", m, *demo, "--protocol", "tmr-all", *a]
        ),
        "eval_zero_shot": lambda m, out, *a: zero_shot_main(["--model_name_or_path", m, *demo, *a]),
        "visualize retrieval": lambda m, out, *a: visualize_main(
            [
                "retrieval",
                "--model_name_or_path",
                m,
                "--query",
                "a person walks",
                "--motions_dir",
                str(motions),
                "--size",
                "20",
                "--num_keyframes",
                "2",
                "--out",
                str(out / "r.png"),
                *a,
            ]
        ),  # fmt: skip
        "visualize attention": lambda m, out, *a: visualize_main(
            ["attention", str(motions / "m0.npy"), "--model_name_or_path", m, "--out", str(out / "a.png"), *a]
        ),
    }


SCRIPTS = ["cli embed", "cli search", "eval_retrieval", "eval_zero_shot", "visualize retrieval", "visualize attention"]


def refusal(run, capsys) -> str:
    """The message a command ends with: the CLI returns 2 and prints it, the scripts exit with it."""
    try:
        code = run()
    except SystemExit as exit_:
        return str(exit_.code)
    assert code == 2
    return capsys.readouterr().err


def test_the_loader_runs_no_foreign_code_and_names_the_flag(tmp_path):
    marker = write_foreign_folder(tmp_path / "foreign")
    with pytest.raises(ValueError, match="nothing was run. Pass --trust_remote_code") as err:
        load_model_and_processor(tmp_path / "foreign")
    assert str(tmp_path / "foreign") in str(err.value)
    assert not marker.exists()


def test_a_foreign_processor_in_our_folder_is_refused(own_folder, tmp_path):
    """The model's classes are ours, the processor's config points at code of its own."""
    source, _ = own_folder
    folder = tmp_path / "model"
    folder.mkdir()
    for name in os.listdir(source):
        (folder / name).write_bytes((source / name).read_bytes())
    marker = tmp_path / "processor.ran"
    (folder / "evil.py").write_text(
        marker_code(marker) + "from transformers import ProcessorMixin\nclass Evil(ProcessorMixin): pass\n"
    )
    config = json.loads((folder / "processor_config.json").read_text())
    config.update(auto_map={"AutoProcessor": "evil.Evil"}, processor_class="Evil")
    (folder / "processor_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="--trust_remote_code"):
        load_model_and_processor(folder)
    assert not marker.exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_run_no_foreign_code_without_the_flag(script, motions, tmp_path, capsys):
    marker = write_foreign_folder(tmp_path / "foreign")
    run = script_runs(motions)[script]
    message = refusal(lambda: run(str(tmp_path / "foreign"), tmp_path), capsys)
    assert "--trust_remote_code" in message and "nothing was run" in message, message
    assert not marker.exists()
    assert sorted(os.listdir(tmp_path)) == ["foreign"]  # no output either


@pytest.mark.parametrize("script", SCRIPTS)
def test_our_folder_loads_without_the_flag_and_without_its_saved_code(script, own_folder, motions, tmp_path, capsys):
    folder, marker = own_folder
    run = script_runs(motions)[script]
    assert run(str(folder), tmp_path) in (None, 0)
    capsys.readouterr()
    assert not marker.exists()


def test_our_model_comes_from_the_installed_package(own_folder):
    folder, marker = own_folder
    model, processor = load_model_and_processor(folder)
    assert type(model).__module__.startswith("motionpatches.") and type(processor).__module__.startswith(
        "motionpatches."
    )
    assert not marker.exists()


def passes_trust_remote_code_true(path: Path) -> list[int]:
    """Lines of calls with a literal `trust_remote_code=True`: only a user's flag may turn it on."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword)
        and node.arg == "trust_remote_code"
        and isinstance(node.value, ast.Constant)
        and node.value.value is True
    ]


def test_no_loader_hard_codes_trust_remote_code():
    found = {name: lines for name in LOADERS if (lines := passes_trust_remote_code_true(REPO / name))}
    assert found == {}


def test_the_hard_coding_check_finds_a_literal(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("AutoModel.from_pretrained(p, trust_remote_code=True)\nf(trust_remote_code=flag)\n")
    assert passes_trust_remote_code_true(path) == [1]


# With the flag, the code runs: in a subprocess whose module cache is its own, so the foreign modules
# imported here stay out of the user's cache and out of this interpreter.
WITH_THE_FLAG = """
import json, sys
from pathlib import Path
from test_trust_remote_code import SCRIPTS, script_runs, write_foreign_folder

root, motions = Path(sys.argv[1]), Path(sys.argv[2])
ran = {}
for index, script in enumerate(SCRIPTS):
    marker = write_foreign_folder(root / f"foreign{index}")
    try:
        script_runs(motions)[script](str(root / f"foreign{index}"), root, "--trust_remote_code")
    except (SystemExit, Exception):
        pass  # a foreign model is no motion model: what follows its import fails
    ran[script] = marker.exists()
print(json.dumps(ran))
"""


@pytest.mark.slow
def test_with_the_flag_every_script_runs_the_folders_code(motions, tmp_path, offline_env):
    env = dict(offline_env, HF_MODULES_CACHE=str(tmp_path / "modules"), PYTHONPATH=os.path.dirname(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", WITH_THE_FLAG, str(tmp_path), str(motions)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == dict.fromkeys(SCRIPTS, True)
