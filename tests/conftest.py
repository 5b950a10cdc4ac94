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
