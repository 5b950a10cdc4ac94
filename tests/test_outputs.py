"""Outputs are checked before any work, and a command writes all of them or none."""

import os
from pathlib import Path

import pytest

from sparq_sim.errors import UserError
from sparq_sim.outputs import OutputSet, check_output_folder, check_output_path
from sparq_sim.validation import published

A10G = published("a10g")
UNWRITABLE = Path("/proc")   # a folder no file can be created in, even by root

needs_proc = pytest.mark.skipif(not (UNWRITABLE / "self").exists(), reason="needs Linux /proc")


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def one_line(result, needle):
    code, out, err = result
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert needle in err, err


# --------------------------------------------------------------------------- the helper

@needs_proc
def test_check_output_path_refuses_unwritable_folder():
    with pytest.raises(UserError, match="cannot write in folder '/proc'"):
        check_output_path("/proc/x.png", flag="--plot")


def test_check_output_path_refuses_folder_missing_folder_and_extension(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        check_output_path(tmp_path / "d.png")
    with pytest.raises(UserError, match="does not exist"):
        check_output_path(tmp_path / "nodir" / "x.png")
    with pytest.raises(UserError, match="must end in .png or .svg"):
        check_output_path(tmp_path / "x.jpg")
    assert files_in(tmp_path) == ["d.png"]   # the trial file is gone


def test_check_output_folder(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(UserError, match="not a folder"):
        check_output_folder(tmp_path / "f")
    with pytest.raises(UserError, match="does not exist"):
        check_output_folder(tmp_path / "a" / "b")
    assert check_output_folder(tmp_path / "new") == tmp_path / "new"
    assert not (tmp_path / "new").exists()   # created only when outputs are committed


def test_output_set_writes_all_at_commit(tmp_path):
    with OutputSet() as outs:
        outs.write_text(tmp_path / "a.csv", "a\n")
        outs.write_bytes(tmp_path / "new" / "b.png", b"png")
        staged = outs.staged(tmp_path / "c.json")
        assert staged.suffix == ".json" and staged.parent == tmp_path
        staged.write_text("{}")
        assert not (tmp_path / "a.csv").exists() and not (tmp_path / "new").exists()
    assert files_in(tmp_path) == ["a.csv", "c.json", "new", "new/b.png"]
    assert (tmp_path / "new" / "b.png").read_bytes() == b"png"
    assert oct(os.stat(tmp_path / "a.csv").st_mode & 0o777) == "0o644"


def test_output_set_writes_nothing_on_error(tmp_path):
    (tmp_path / "old.csv").write_text("kept")
    with pytest.raises(RuntimeError):
        with OutputSet() as outs:
            outs.write_text(tmp_path / "old.csv", "replaced")
            outs.write_text(tmp_path / "new" / "b.txt", "b")
            raise RuntimeError("the second output failed")
    assert files_in(tmp_path) == ["old.csv"]
    assert (tmp_path / "old.csv").read_text() == "kept"


def test_output_set_turns_a_write_error_into_one_line(tmp_path):
    with pytest.raises(UserError, match="cannot write"):
        with OutputSet() as outs:
            outs.staged(tmp_path / "a.csv")
            raise OSError(28, "No space left on device", str(tmp_path / "a.csv"))
    assert files_in(tmp_path) == []


# --------------------------------------------------------------------------- checks before work

@needs_proc
@pytest.mark.parametrize("argv", [
    ("roofline", "--hw", "h100", "--out", "/proc/r.png"),
    ("plan", "--hw", "h100", "--seq", "32k", "--plot", "/proc/p.png"),
    ("validate", "--measurements", A10G, "--plot", "/proc/v.png"),
    ("validate", "--measurements", A10G, "--fit", "--write-calibration", "/proc/c.toml"),
])
def test_unwritable_outputs_are_one_line(cli, argv):
    one_line(cli(*argv), "cannot write in folder '/proc'")


def test_output_onto_a_folder_is_one_line(cli, tmp_path):
    (tmp_path / "r.png").mkdir()
    one_line(cli("roofline", "--hw", "h100", "--out", tmp_path / "r.png"), "is a folder")


def test_write_calibration_checked_before_reading(cli, tmp_path, monkeypatch):
    import sparq_sim.validation.measurements as measurements

    def fail(*a, **k):
        raise AssertionError("measurements read before the output was checked")
    monkeypatch.setattr(measurements, "read_measurements", fail)
    one_line(cli("validate", "--measurements", A10G, "--fit", "--write-calibration", tmp_path / "nodir" / "c.toml"),
             "does not exist")


@needs_proc
@pytest.mark.parametrize("extra", [("--out", "/proc/x"), ("--out", "OUT", "--plot", "/proc/v.png")])
def test_validate_local_checks_outputs_before_measuring(cli, tmp_path, monkeypatch, extra):
    import sparq_sim.validation.local as local

    def fail(*a, **k):
        raise AssertionError("measured before the outputs were checked")
    monkeypatch.setattr(local, "run_local", fail)
    monkeypatch.setattr(local, "measure", fail)
    extra = [str(tmp_path / "w") if e == "OUT" else e for e in extra]
    one_line(cli("validate", "--local", "--quick", *extra), "cannot write in folder '/proc'")
    assert files_in(tmp_path) == []


# --------------------------------------------------------------------------- all or nothing

@needs_proc
def test_sweep_unwritable_plot_leaves_no_csv(cli, tmp_path):
    one_line(cli("sweep", "--hw", "h100", "--seq", "4k", "--out", tmp_path / "s.csv", "--plot", "/proc/h.png"),
             "/proc")
    assert files_in(tmp_path) == []


def test_sweep_failing_heatmap_leaves_no_csv(cli, tmp_path, monkeypatch):
    import sparq_sim.plots as plots

    def broken(*a, **k):
        raise UserError("heatmap failed")
    monkeypatch.setattr(plots, "speedup_heatmap", broken)
    one_line(cli("sweep", "--hw", "h100", "--seq", "4k", "--out", tmp_path / "s.csv"), "heatmap failed")
    assert files_in(tmp_path) == []


def test_sweep_writes_both(cli, tmp_path):
    code, out, err = cli("sweep", "--hw", "h100", "--seq", "4k", "--out", tmp_path / "s.csv")
    assert code == 0, err
    assert files_in(tmp_path) == ["s.csv", "s.png"]


def test_validate_failing_plot_leaves_no_calibration(cli, tmp_path, monkeypatch):
    from sparq_sim.validation import core

    def broken(*a, **k):
        raise UserError("plot failed")
    monkeypatch.setattr(core, "plot", broken)
    one_line(cli("validate", "--measurements", A10G, "--fit", "--write-calibration", tmp_path / "c.toml",
                 "--plot", tmp_path / "v.png"), "plot failed")
    assert files_in(tmp_path) == []


def test_validate_writes_calibration_and_plot(cli, tmp_path):
    code, out, err = cli("validate", "--measurements", A10G, "--fit", "--write-calibration", tmp_path / "c.toml",
                         "--plot", tmp_path / "v.png")
    assert code == 0, err
    assert files_in(tmp_path) == ["c.toml", "v.png"]
    assert 'device = "a10g"' in (tmp_path / "c.toml").read_text()


def test_plan_plot_when_nothing_fits(cli, tmp_path):
    plot = tmp_path / "p.png"
    one_line(cli("plan", "--hw", "a10g", "--model", "llama-2-70b", "--seq", "32k", "--plot", plot),
             "nothing fits in memory")
    assert files_in(tmp_path) == []


def _fake_local_rows(cases):
    """Rows, notes and the in-round rates as validate --local's measurement gives them (made up:
    1 ms per call, a 20 GB/s stream, a 7 GB/s framework matmul)."""
    from sparq_sim.validation.runs import RoundRates
    rows = []
    for kern, S, r, k in cases:
        rows.append({"device_name": "local: test CPU (2 threads)", "device": "cpu", "dtype": "float32",
                     "n_head": 8, "head_dim": 128, "sequence_length": S, "batch_size": 1, "kernel": kern,
                     "r": "" if r is None else r, "k": "" if k is None else k,
                     "store_k_twice": "false" if r is None or kern.endswith("oneK") else "true",
                     "duration_s": "0.001", "duration_stderr_s": "", "reps": 5, "warmup": 1,
                     "torch_version": ""})
    return rows, [], RoundRates((20e9, "test stream"), (7e9, "test matmul"))


def test_validate_local_failing_plot_leaves_nothing(cli, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import sparq_sim.validation.local as local
    from sparq_sim.validation import core

    monkeypatch.setattr(local, "calibration_mismatch", lambda *a, **k: [])
    monkeypatch.setattr(local, "measure", lambda cases, *a, **k: _fake_local_rows(cases))
    monkeypatch.setattr(local, "_environment", lambda threads, device: {
        "cpu": "test", "threads": threads, "torch": "", "bandwidth_GBps": 1.0, "bandwidth_source": "test",
        "allocator": "test"})

    def broken(*a, **k):
        raise UserError("plot failed")
    monkeypatch.setattr(core, "plot", broken)
    one_line(cli("validate", "--local", "--quick", "--threads", "2", "--out", tmp_path / "w"), "plot failed")
    assert files_in(tmp_path) == []

    monkeypatch.undo()
    monkeypatch.setattr(local, "calibration_mismatch", lambda *a, **k: [])
    monkeypatch.setattr(local, "measure", lambda cases, *a, **k: _fake_local_rows(cases))
    code, out, err = cli("validate", "--local", "--quick", "--threads", "2", "--out", tmp_path / "w")
    assert code == 0, err
    assert files_in(tmp_path) == ["w", "w/machine.toml", "w/predictions.csv", "w/report.json", "w/results.csv",
                                  "w/summary.md", "w/validate.png"]
    # the machine the runs were timed on, as the runs found it
    from sparq_sim.hardware import load_device
    machine = load_device(tmp_path / "w" / "machine.toml")
    assert machine.bandwidth_Bps.value == 20e9 and machine.calibration["framework_matmul_Bps"].value == 7e9


@needs_proc
@pytest.mark.parametrize("out,needle", [("/proc/local.toml", "cannot write in folder '/proc'"),
                                        ("nodir/local.toml", "does not exist"), ("local.txt", "must end in .toml")])
def test_measure_checks_its_output_before_measuring(cli, tmp_path, monkeypatch, out, needle):
    pytest.importorskip("numba")
    import sparq_sim.kernels.membench as membench

    def fail(*a, **k):
        raise AssertionError("measured before the output was checked")
    monkeypatch.setattr(membench, "run_all", fail)
    monkeypatch.chdir(tmp_path)
    one_line(cli("measure", "--out", out), needle)
