"""Shared fixtures: run the CLI in-process and capture its output and exit code."""

import pytest

from sparq_sim.cli import main


@pytest.fixture
def cli(capsys):
    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err
    return run


# Run in a new interpreter: prints the exit code of each command line and the modules it imported.
_FRESH = """
import contextlib, io, json, sys
from sparq_sim.cli import main
codes = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()):
        codes.append(main(argv))
print(json.dumps({"codes": codes, "modules": sorted(sys.modules)}))
"""


@pytest.fixture
def fresh_cli():
    """Run command lines one after another through the CLI in a new Python process, as a user's first
    command would run: returns their exit codes and the set of modules the process had imported."""
    import json
    import subprocess
    import sys

    def run(*argvs):
        result = subprocess.run([sys.executable, "-c", _FRESH, json.dumps([list(a) for a in argvs])],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout.splitlines()[-1])
        return out["codes"], set(out["modules"])
    return run
