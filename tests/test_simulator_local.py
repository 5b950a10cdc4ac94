"""The local profile: its file, its cache location, --hw local, and the measure command's checks.

No measurement runs here (no timing in unit tests): synthetic measurements stand in.
"""

import sys

import pytest

from sparq_sim.hardware import load_device, load_file
from sparq_sim.simulator import local
from sparq_sim.simulator.config import dram_config

MEAS = {"cpu": "Test CPU", "threads": 2, "buffer_bytes": 1 << 30, "huge_pages_kB": 1 << 20,
        "date": "2026-01-01", "repeats": 9,
        "latency": {"median_s": 150e-9, "min_s": 140e-9, "max_s": 160e-9, "steps": 1, "repeats": 5},
        "stream": {"bytes": 1 << 30, "median_Bps": 25e9, "min_Bps": 24e9, "max_Bps": 26e9, "repeats": 9},
        "gather": [{"row_bytes": s, "bytes": 1 << 27, "median_Bps": 5e9, "min_Bps": 4e9, "max_Bps": 6e9,
                    "repeats": 9} for s in (64, 128)]}
PARAMS = {"pieces_per_unit": 12.5, "outstanding_per_unit": 27.0, "demand_per_unit": 18.5,
          "prefetch_after_lines": 24, "piece_line_cost": 0.3}


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARQ_SIM_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert local.local_profile_path() == tmp_path / "a" / "local.toml"
    monkeypatch.delenv("SPARQ_SIM_CACHE_DIR")
    assert local.local_profile_path() == tmp_path / "b" / "sparq-sim" / "local.toml"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert local.local_profile_path() == tmp_path / "home" / ".cache" / "sparq-sim" / "local.toml"


def test_profile_round_trips_and_hw_local_works(monkeypatch, tmp_path, cli):
    monkeypatch.setenv("SPARQ_SIM_CACHE_DIR", str(tmp_path))
    code, out, err = cli("predict", "--hw", "local", "--seq", "4k")
    assert code == 2 and "sparq-sim measure" in err
    profile = {"data": local.base_profile(MEAS, PARAMS), "measurements": MEAS, "comparison": []}
    path = local.write_profile(profile)
    assert path == tmp_path / "local.toml"
    device = load_device("local")
    assert device.kind == "cpu" and device.sustained_bandwidth == pytest.approx(25e9)
    assert device.bandwidth_Bps.basis == "measured" and "2026-01-01" in device.bandwidth_Bps.source
    assert "Test CPU" in device.bandwidth_Bps.source
    cfg = dram_config(device)
    assert cfg.max_pieces == 25 and cfg.max_requests == 54 and cfg.max_demand == 37
    assert cfg.prefetch_after == 24 and cfg.piece_line_cost == pytest.approx(0.3)
    assert device.dram.pieces_per_unit.basis == "fitted"
    assert device.dram.idle_latency_s.basis == "measured"
    code, out, err = cli("predict", "--hw", "local", "--seq", "32k", "--timing", "sim")
    assert code == 0, err
    assert load_file(path).name == "local"


def test_measure_rejects_bad_flags(cli):
    code, out, err = cli("measure", "--buffer-mib", "8")
    assert code == 2 and "--buffer-mib" in err
    code, out, err = cli("measure", "--out", "profile.txt")
    assert code == 2 and "--out" in err
    code, out, err = cli("measure", "--repeats", "zero")
    assert code == 2


def test_comparison_table_and_markdown():
    profile = {"data": local.base_profile(MEAS, PARAMS), "measurements": MEAS,
               "comparison": [{"size": "stream", "measured_Bps": 25e9, "min_Bps": 24e9, "max_Bps": 26e9,
                               "simulated_Bps": 25e9, "error": 0.0, "role": "fit"},
                              {"size": 128, "measured_Bps": 5e9, "min_Bps": 4e9, "max_Bps": 6e9,
                               "simulated_Bps": 5.5e9, "error": 0.1, "role": "held out"}]}
    table = local.comparison_table(profile)
    assert "128 B rows" in table and "+10.0%" in table
    md = local.membench_markdown(profile, "the command")
    assert "the command" in md and "held-out" in md


def test_membench_module_is_importable_without_running():
    pytest.importorskip("numba")
    from sparq_sim.kernels import membench
    assert membench.ROW_SIZES[0] == 64 and membench.ROW_SIZES[-1] == 8192
    assert "sparq_sim.kernels.membench" in sys.modules


def test_profile_records_the_frameworks_matmul_rate_when_measured(tmp_path):
    """sparq-sim measure times PyTorch's q @ K^T beside the stream where torch is installed; the
    profile carries it as the calibrated model's reference for the BLAS families."""
    assert "calibration" not in local.base_profile(MEAS, PARAMS)
    meas = {**MEAS, "framework_matmul": {"what": "PyTorch float32 q @ K^T", "bytes": 1 << 30, "median_Bps": 11e9,
                                         "min_Bps": 10e9, "max_Bps": 12e9, "repeats": 9}}
    data = local.base_profile(meas, PARAMS)
    path = tmp_path / "local.toml"
    path.write_text(local.to_toml(data))
    device = load_file(path)
    assert device.calibration["framework_matmul_Bps"].value == 11e9
    assert device.calibration["framework_matmul_Bps"].basis == "measured"
