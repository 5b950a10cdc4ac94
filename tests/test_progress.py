"""Long steps show a tqdm bar on stderr when it is a terminal, and nothing otherwise."""

import pytest

import sparq_sim.progress as progress


@pytest.mark.parametrize("argv,desc", [
    (("sweep", "--hw", "h100", "--seq", "4k,8k", "--out", "OUT/s.csv"), "sweep: "),
    (("roofline", "--hw", "h100", "--seq", "4k,8k", "--out", "OUT/r.png"), "roofline: "),
    (("plan", "--hw", "h100", "--seq", "4k", "--plot", "OUT/p.png"), "plan: "),
    (("simulate", "--hw", "h100", "--seq", "1k", "--method", "dense"), "simulate: "),
    (("validate", "--measurements", "A10G"), "validate: "),
])
def test_bar_on_a_terminal_only(cli, tmp_path, monkeypatch, argv, desc):
    from sparq_sim.validation import published
    argv = [str(published("a10g")) if a == "A10G" else a.replace("OUT", str(tmp_path)) for a in argv]
    code, out, err = cli(*argv)
    assert code == 0 and desc not in err           # not a terminal (pytest's capture): no bar
    monkeypatch.setattr(progress, "_is_tty", lambda: True)
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    code, out, err = cli(*argv)
    assert code == 0 and desc in err and "%|" in err   # tqdm's bar (redrawn at most every 0.1 s)
    assert desc not in out                          # stdout stays the answer
