"""The shape of the package: one import name, no import cycles, remote-code files that stand alone,
no `sys.path` edits, and a wheel that works without the checkout."""

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# import name -> source folder, as setup.py maps them
PACKAGE_DIRS = {
    "motionpatches": REPO / "src" / "motionpatches",
    "motionpatches.configuration": REPO / "configuration",
    "motionpatches.processors": REPO / "processors",
    "motionpatches.modeling_motionpatches": REPO / "modeling_motionpatches",
    "motionpatches.training": REPO / "training",
}
# shipped flat inside every saved model folder, where only same-folder imports resolve
REMOTE_CODE_DIRS = ("configuration", "processors", "modeling_motionpatches")
SCRIPT_MODULES = (
    "motionpatches.cli",
    "motionpatches.training.train",
    "motionpatches.training.eval_retrieval",
    "motionpatches.training.eval_zero_shot",
    "motionpatches.training.visualize",
    "motionpatches.training.export_demo",
    "motionpatches.training.convert_authors_checkpoint",
)


def package_modules() -> dict[str, Path]:
    """Every module of the installed package by its dotted name, read from the source folders."""
    modules = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts))
            modules[name.removesuffix(".__init__")] = path
    return modules


def module_level_nodes(tree: ast.AST):
    """Every node outside function bodies: what runs when the module is imported."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        pending += [
            child
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        ]


def imported_modules(name: str, path: Path, known: set[str], module_level_only: bool = False) -> set[str]:
    """The package modules `name` imports anywhere in its file (also inside functions and try blocks), or only
    at import time with `module_level_only`."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in module_level_nodes(tree) if module_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module
            # `from package import submodule` imports the submodule
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target in known)
    return found


def test_no_import_cycles():
    modules = package_modules()
    graph = {name: imported_modules(name, path, set(modules)) - {name} for name, path in modules.items()}
    # a package's __init__ importing its own modules is how packages work; a module importing its
    # parent package back is not counted, so only real cycles between modules remain
    for name in graph:
        graph[name] = {target for target in graph[name] if not name.startswith(target + ".")}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert "motionpatches.training.train" in graph and len(graph) > 30  # the walk saw the package


# The two applications on top of the library may load the dataset catalog (`--dataset_name demo`) inside the
# function of the command that needs it, so that nothing else imports the trainer; never at import time.
APPLICATIONS = ("motionpatches.cli", "motionpatches.app")


def test_the_library_never_imports_the_trainer():
    """As in open_clip: the model, its processor and the tools around them work without `training`."""
    modules = package_modules()
    library = [name for name in modules if not name.startswith("motionpatches.training")]
    offenders = {}
    for name in library:
        imported = imported_modules(name, modules[name], set(modules), module_level_only=name in APPLICATIONS)
        offenders[name] = sorted(target for target in imported if target.startswith("motionpatches.training"))
    assert {name: found for name, found in offenders.items() if found} == {}
    assert "motionpatches.cli" in library and "motionpatches.processors.bvh" in library


def test_the_applications_load_the_trainer_only_when_a_command_needs_it(tmp_path, offline_env):
    check = "import sys, motionpatches.cli, motionpatches.app; print(any(m.startswith('motionpatches.training') for m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", check], env=offline_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"


def test_remote_code_files_import_only_their_own_folder():
    """A saved folder holds these files flat: a relative import must name a sibling, except in a `try` whose
    `except` falls back to the installed package (the modeling file's configuration import)."""
    flat = {path.stem for folder in REMOTE_CODE_DIRS for path in (REPO / folder).glob("*.py")}
    problems = []
    for folder in REMOTE_CODE_DIRS:
        for path in sorted((REPO / folder).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            tries = [node for node in ast.walk(tree) if isinstance(node, ast.Try)]
            in_body = {id(n) for t in tries for statement in t.body for n in ast.walk(statement)}
            in_handler = {id(n) for t in tries for handler in t.handlers for n in ast.walk(handler)}
            for node in ast.walk(tree):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                if isinstance(node, ast.ImportFrom) and node.level:
                    sibling = node.level == 1 and (path.parent / f"{node.module}.py").is_file()
                    if not sibling and not (id(node) in in_body and node.level == 1 and node.module in flat):
                        problems.append(f"{where}: relative import of something not in {folder}/")
                    continue
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if any(n.split(".")[0] == "motionpatches" for n in names) and id(node) not in in_handler:
                    problems.append(f"{where}: imports the installed package outside an except fallback")
    assert not problems, "\n".join(problems)


def test_nothing_edits_sys_path():
    offenders = [
        str(path.relative_to(REPO))
        for path in REPO.rglob("*.py")
        if path != Path(__file__).resolve()
        and not {"fixtures", ".git"} & set(path.parts)
        and "sys.path" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


@pytest.mark.slow
def test_wheel_holds_one_import_name_and_runs_without_the_checkout(tmp_path, offline_env):
    # built from a copy: setuptools leaves a build/ folder behind, whose stale files a later build would ship
    source = tmp_path / "source"
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".git", "build", "outputs", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        env=offline_env,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("motionpatches-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"motionpatches", wheel.name.split("-py")[0] + ".dist-info"}
    for module in [*package_modules()]:
        relative = module.replace(".", "/")
        assert f"{relative}.py" in names or f"{relative}/__init__.py" in names, f"{module} is not in the wheel"
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "motionpatches = motionpatches.cli:main" in entry_points

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        env=offline_env,
        timeout=600,
    )
    # from the checkout's root, where a stray top-level folder would shadow the installed package
    check = f"""
import runpy, sys
import motionpatches
from motionpatches import MotionPatchesConfig, MotionPatchProcessor, MotionTextModel
assert motionpatches.__file__.startswith({str(site)!r}), motionpatches.__file__
for module in {list(SCRIPT_MODULES)!r}:
    sys.argv = [module, "--help"]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        assert exit.code in (0, None), (module, exit.code)
    print("ok", module)
"""
    env = dict(offline_env, PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", check], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [line for line in proc.stdout.splitlines() if line.startswith("ok ")] == [f"ok {m}" for m in SCRIPT_MODULES]
