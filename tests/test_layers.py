"""The import layers of pyproject.toml's [tool.importlinter] contracts hold on this tree, and an
import that runs the wrong way breaks them, naming the offending line.

import-linter reads a package from one folder, while the installed ``sparq_sim`` is assembled from
four (``hardware/``, ``kernels/`` and ``validation/`` become ``sparq_sim.hardware`` and so on, by
pyproject's ``package-dir``). So each test lays the Python files out as the installed package
under tmp_path, following that mapping, and runs the contracts there in a fresh interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

try:
    import tomllib
except ModuleNotFoundError:   # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))")


def _python_files_only(folder, names):
    return [n for n in names
            if n == "__pycache__" or (os.path.isfile(os.path.join(folder, n)) and not n.endswith(".py"))]


def installed_layout(root: Path) -> Path:
    """The Python files of the package as pip installs them, under `root`; returns `root`."""
    package_dir = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(package_dir.items()):   # parents before children
        shutil.copytree(REPO / folder, root.joinpath(*package.split(".")), ignore=_python_files_only)
    return root


def lint(root: Path) -> subprocess.CompletedProcess:
    """Run the repository's contracts on the package laid out under `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", LINT, str(PYPROJECT)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def contract_names() -> list[str]:
    return [c["name"] for c in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]]


def test_contracts_hold_on_this_tree(tmp_path):
    result = lint(installed_layout(tmp_path))
    output = " ".join((result.stdout + result.stderr).split())   # long names wrap
    assert result.returncode == 0, output
    assert "0 broken" in output
    for name in contract_names():
        assert f"{name} KEPT" in output, name


def test_layout_is_the_installed_package(tmp_path):
    root = installed_layout(tmp_path)
    for module in ("sparq_sim/cli.py", "sparq_sim/hardware/__init__.py", "sparq_sim/kernels/timing.py",
                   "sparq_sim/validation/io.py", "sparq_sim/commands/predict.py"):
        assert (root / module).is_file(), module
    assert not list(root.rglob("*.toml")) and not list(root.rglob("*.csv"))


@pytest.mark.parametrize("module, line, offending", [
    # the bottom layer reaching for the top one
    ("sparq_sim/errors.py", "import sparq_sim.cli", "sparq_sim.errors -> sparq_sim.cli"),
    # the traffic model reaching for the command line's flags
    ("sparq_sim/traffic.py", "from sparq_sim.commands import _args",
     "sparq_sim.traffic -> sparq_sim.commands._args"),
    # the old circle: the workload asking the traffic model, inside a function
    ("sparq_sim/workload.py", "def _ratio():\n    from sparq_sim import traffic",
     "sparq_sim.workload -> sparq_sim.traffic"),
    # the prediction path reaching for the kernels' harness
    ("sparq_sim/predict.py", "def _measure():\n    from sparq_sim.kernels import timing",
     "sparq_sim.predict -> sparq_sim.kernels.timing"),
    # torch on the prediction path, even lazily
    ("sparq_sim/capacity.py", "def _tensor():\n    import torch", "sparq_sim.capacity -> torch"),
    # a chart drawn outside plots.py
    ("sparq_sim/compare.py", "def _chart():\n    import matplotlib", "sparq_sim.compare -> matplotlib"),
    # the kernels reaching for the validation suite
    ("sparq_sim/kernels/timing.py", "from sparq_sim.validation import stats",
     "sparq_sim.kernels.timing -> sparq_sim.validation.stats"),
])
def test_an_upward_import_breaks_the_contracts(tmp_path, module, line, offending):
    root = installed_layout(tmp_path)
    path = root / module
    path.write_text(path.read_text() + "\n\n" + line + "\n")
    result = lint(root)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "BROKEN" in output
    assert offending in output, output


def test_architecture_doc_names_every_layer():
    """docs/architecture.md draws the same layers as the contract."""
    doc = (REPO / "docs" / "architecture.md").read_text()
    contract = next(c for c in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
                    if c["id"] == "layers")
    for layer in contract["layers"]:
        for name in layer.replace(":", "|").split("|"):
            name = name.strip().strip("()")
            assert f"`{name}`" in doc or f"`{name}.*`" in doc, name


if __name__ == "__main__":   # the full import-linter report: python tests/test_layers.py
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        result = lint(installed_layout(Path(folder)))
    print(result.stdout + result.stderr, end="")
    sys.exit(result.returncode)
