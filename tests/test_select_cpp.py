"""The C++ replica of llama.cpp's SparQ selection selects what a float64 top-k selects, and its
benchmark rejects bad input in one line."""

import shutil

import numpy as np
import pytest

from sparq_sim.kernels import bench_select_cpp

pytestmark = pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="no C++ compiler")


@pytest.fixture(scope="module")
def exe(tmp_path_factory):
    return bench_select_cpp.build(tmp_path_factory.mktemp("cpp"))


@pytest.mark.parametrize("s,divisor", [(24, 12), (1000, 12), (4096, 16)])
def test_selects_the_k_largest(exe, s, divisor):
    (row,) = bench_select_cpp.run(exe, [s], "--check", "--k-divisor", str(divisor))
    assert row["k"] == s // divisor and len(set(row["indices"])) == row["k"]
    (printed,) = bench_select_cpp.run(exe, [s], "--scores")
    scores = np.array(printed["scores"], dtype=np.float64)
    expected = set(np.argsort(-scores, kind="stable")[: row["k"]].tolist())
    assert set(row["indices"]) == expected


def test_timing_rows(exe):
    rows = bench_select_cpp.run(exe, [2048, 4096], "--repeats", "3", "--warmup", "1")
    assert [r["S"] for r in rows] == [2048, 4096] and all(r["median_s"] > 0 for r in rows)
    assert all(r["p10_s"] <= r["median_s"] <= r["p90_s"] for r in rows)


def test_nominal_clock_from_model_name():
    assert bench_select_cpp.nominal_clock_hz("Intel(R) Xeon(R) Processor @ 2.00GHz") == 2.0e9
    assert bench_select_cpp.nominal_clock_hz("AMD EPYC 7763 64-Core Processor") is None


@pytest.mark.parametrize("argv,needle", [(["--seqs", "4k,x"], "--seqs"), (["--rounds", "0"], "rounds"),
                                         (["--json", "/nonexistent-dir/out.json"], "--json"),
                                         (["--seqs", "8", "--k-divisor", "12"], "k-divisor")])
def test_bad_input_is_one_line(argv, needle, capsys):
    assert bench_select_cpp.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err
