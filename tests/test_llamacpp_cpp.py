"""The C++ replicas of llama.cpp's SparQ op and its selection against float64 references, and their
benchmark's bad input in one line."""

import shutil

import numpy as np
import pytest

from sparq_sim.kernels import bench_llamacpp

pytestmark = pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="no C++ compiler")


@pytest.fixture(scope="module")
def exe(tmp_path_factory):
    return bench_llamacpp.build(tmp_path_factory.mktemp("cpp"), "llamacpp_select")


@pytest.fixture(scope="module")
def op_exe(tmp_path_factory):
    return bench_llamacpp.build(tmp_path_factory.mktemp("cpp-op"), "llamacpp_op")


@pytest.mark.parametrize("s,r", [(512, 11), (4096, 16), (2000, 128)])
def test_op_matches_its_float64_reference(op_exe, s, r):
    """The op (top-r, step 1, top-k, exact softmax over the k rows, weighted V) against the same
    steps in float64 on the rows it selected: float32 accumulation errors only."""
    (row,) = bench_llamacpp.run(op_exe, [s], "--check", "--r", str(r), "--heads", "1")
    assert row["k"] == s // 12 and row["max_abs_reference"] > 0
    assert row["max_abs_error"] < 1e-5 * max(1.0, row["max_abs_reference"])


def test_op_timing_has_its_parts(op_exe):
    (row,) = bench_llamacpp.run(op_exe, [4096], "--repeats", "2", "--warmup", "1", "--heads", "2")
    assert row["gathered_rows"] == 2 * (4096 // 12) and row["step1_bytes"] == 11 * 4096 * 2
    assert min(row["op_s"], row["step1_s"], row["select_s"], row["gather_s"], row["dram_latency_s"]) > 0


@pytest.mark.parametrize("s,divisor", [(24, 12), (1000, 12), (4096, 16)])
def test_selects_the_k_largest(exe, s, divisor):
    (row,) = bench_llamacpp.run(exe, [s], "--check", "--k-divisor", str(divisor))
    assert row["k"] == s // divisor and len(set(row["indices"])) == row["k"]
    (printed,) = bench_llamacpp.run(exe, [s], "--scores")
    scores = np.array(printed["scores"], dtype=np.float64)
    expected = set(np.argsort(-scores, kind="stable")[: row["k"]].tolist())
    assert set(row["indices"]) == expected


def test_timing_rows(exe):
    rows = bench_llamacpp.run(exe, [2048, 4096], "--repeats", "3", "--warmup", "1")
    assert [r["S"] for r in rows] == [2048, 4096] and all(r["median_s"] > 0 for r in rows)
    assert all(r["p10_s"] <= r["median_s"] <= r["p90_s"] for r in rows)


def test_nominal_clock_from_model_name():
    assert bench_llamacpp.nominal_clock_hz("Intel(R) Xeon(R) Processor @ 2.00GHz") == 2.0e9
    assert bench_llamacpp.nominal_clock_hz("AMD EPYC 7763 64-Core Processor") is None


@pytest.mark.parametrize("argv,needle", [(["--seqs", "4k,x"], "--seqs"), (["--rounds", "0"], "rounds"),
                                         (["--json", "/nonexistent-dir/out.json"], "--json"),
                                         (["--seqs", "8", "--k-divisor", "12"], "k-divisor"),
                                         (["--r", "0"], "--r")])
def test_bad_input_is_one_line(argv, needle, capsys):
    assert bench_llamacpp.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_per_head_selection_counts_and_times(exe):
    """--heads: one call per head's scores; nth_element compares every position at least once."""
    (row,) = bench_llamacpp.run(exe, [4096], "--heads", "5", "--warmup", "1")
    assert row["S"] == 4096 and row["k"] == 4096 // 12 and row["heads"] == 5
    assert len(row["times_s"]) == len(row["comparisons"]) == 5 and min(row["times_s"]) > 0
    assert min(row["comparisons"]) >= 4096 - 1 and len(set(row["comparisons"])) > 1   # heads differ


def test_expected_max_of_n_draws():
    """Four equally likely values: one draw averages 2.5; the larger of two is 4 with probability
    7/16, 3 with 5/16, 2 with 3/16 and 1 with 1/16: 50/16."""
    assert bench_llamacpp.expected_max([3, 1, 4, 2], 1) == pytest.approx(2.5)
    assert bench_llamacpp.expected_max([3, 1, 4, 2], 2) == pytest.approx(50 / 16)
    assert bench_llamacpp.expected_max([3, 1, 4, 2], 1000) == pytest.approx(4.0, rel=1e-6)


def test_selection_costs_recover_the_line():
    """Calls timed at exactly 2 cycles per position + 3 per comparison (at 1 GHz) give back 2 and 3;
    comparisons per position pool over both lengths."""
    calls = [{"S": s, "heads": 3, "comparisons": c, "times_s": [(2 * s + 3 * x) / 1e9 for x in c]}
             for s, c in ((1000, [2000, 2500, 3000]), (2000, [4000, 4400, 6000]))]
    got = bench_llamacpp.selection_costs(calls, 1e9)
    assert got["unit"] == "cycles"
    assert got["fixed_per_position"] == pytest.approx(2.0) and got["per_comparison"] == pytest.approx(3.0)
    per_position = [2.0, 2.5, 3.0, 2.0, 2.2, 3.0]
    assert got["comparisons_per_position"]["mean"] == pytest.approx(sum(per_position) / 6)
    assert got["comparisons_per_position"]["slowest_of"]["1"] == pytest.approx(sum(per_position) / 6)
    assert got["comparisons_per_position"]["slowest_of"]["64"] == pytest.approx(3.0, rel=1e-3)
