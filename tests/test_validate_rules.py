"""validate's rules: a local calibration serves only the machine it was fitted on, --local needs
the kernels extra, and --max-median-error gates on accuracy (exit 1)."""

import sys

import pytest

from sparq_sim.errors import UserError
from sparq_sim.validation import published

FACTS = {"cpu_model": "AMD EPYC 7763", "cores": 2, "llc_bytes": 33554432}


def cal(bandwidth=10e9, **meta):
    return {"bandwidth_Bps": bandwidth, "meta": {**FACTS, **meta}}


def never():
    raise AssertionError("bandwidth measured although the machine facts differ")


def test_same_machine_within_tolerance_is_used():
    from sparq_sim.validation.local import calibration_mismatch
    assert calibration_mismatch(cal(10e9), FACTS, lambda: 10e9) == []
    assert calibration_mismatch(cal(10e9), FACTS, lambda: 12.4e9) == []
    assert calibration_mismatch(cal(10e9), FACTS, lambda: 7.6e9) == []


def test_bandwidth_outside_tolerance_is_another_machine():
    from sparq_sim.validation.local import calibration_mismatch
    # the stored file's 31.6 GB/s on a machine reading 8 GB/s
    reasons = calibration_mismatch(cal(31.6e9), FACTS, lambda: 8e9)
    assert len(reasons) == 1 and "31.6 GB/s" in reasons[0] and "8.0 GB/s" in reasons[0]
    assert calibration_mismatch(cal(10e9), FACTS, lambda: 12.6e9)


@pytest.mark.parametrize("key,value,needle", [
    ("cpu_model", "AMD EPYC", "CPU AMD EPYC"),
    ("cores", 64, "cores 64"),
    ("llc_bytes", 268435456, "last-level cache bytes 268435456"),
])
def test_other_cpu_cores_or_cache_is_another_machine(key, value, needle):
    from sparq_sim.validation.local import calibration_mismatch
    reasons = calibration_mismatch(cal(**{key: value}), FACTS, never)
    assert len(reasons) == 1 and needle in reasons[0]


def test_calibration_without_identity_is_not_used():
    from sparq_sim.validation.local import calibration_mismatch
    reasons = calibration_mismatch({"bandwidth_Bps": 1e10, "meta": {"cpu_model": FACTS["cpu_model"]}}, FACTS, never)
    assert [r.split(" the ")[-1] for r in reasons] == ["cores it was fitted with",
                                                      "last-level cache bytes it was fitted with"]


def test_run_local_says_so_and_calibrates_on_mismatch(monkeypatch, tmp_path, capsys):
    import sparq_sim.validation.local as local

    def calibrating(*a, **k):
        raise UserError("calibrating now")

    def measuring(*a, **k):
        raise UserError("measuring with the stored calibration")
    monkeypatch.setattr(local, "calibrate_local", calibrating)
    monkeypatch.setattr(local, "measure", measuring)
    monkeypatch.setattr(local, "calibration_mismatch", lambda *a, **k: ["fitted at 31.6 GB/s"])
    with pytest.raises(UserError, match="calibrating now"):
        local.run_local(out=tmp_path / "w", quick=True)
    assert "not using calibration" in capsys.readouterr().err
    monkeypatch.setattr(local, "calibration_mismatch", lambda *a, **k: [])
    with pytest.raises(UserError, match="measuring with the stored calibration"):
        local.run_local(out=tmp_path / "w", quick=True)
    assert "not using" not in capsys.readouterr().err


def test_stored_calibration_records_what_identifies_the_machine():
    """validate --local --calibrate stores the facts calibration_mismatch compares."""
    import inspect

    import sparq_sim.validation.local as local
    assert set(FACTS) == set(local.machine_facts())
    assert "machine_facts()" in inspect.getsource(local.calibrate_local)


def test_validate_local_without_torch_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)   # import torch now raises ImportError
    code, out, err = cli("validate", "--local", "--quick", "--out", tmp_path / "w")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "needs the kernels extra" in err
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("gate,code", [("6", 0), ("0.1", 1)])
def test_max_median_error_gates_on_the_shipped_a10g_data(cli, gate, code):
    got, out, err = cli("validate", "--measurements", published("a10g"), "--max-median-error", gate)
    assert got == code, err
    assert "median |err|" in out
    if code:
        assert "exceeds --max-median-error 0.1%" in err


@pytest.mark.parametrize("bad", ["nan", "-1", "x", "inf"])
def test_max_median_error_bad_value(cli, bad):
    code, out, err = cli("validate", "--measurements", published("a10g"), "--max-median-error", bad)
    assert code == 2 and "--max-median-error" in err
