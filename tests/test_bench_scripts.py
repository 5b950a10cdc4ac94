"""The benchmark scripts reject bad arguments with one error line and exit 2, before measuring."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("numba")


def exit_code(main, argv) -> int:
    """main(argv)'s return value, or its exit code where argparse exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv", [["--seqs", "32q"], ["--rounds", "0"], ["--repeats", "0"], ["--pages", "tiny"]])
def test_bench_cpu_bad_arguments(capsys, argv):
    from sparq_sim.kernels import bench_cpu
    assert exit_code(bench_cpu.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err and argv[1] in err


@pytest.mark.parametrize("argv", [["--seqs", "4q"], ["--batches", "x"]])
def test_bench_triton_bad_arguments(capsys, argv):
    from sparq_sim.kernels import bench_triton
    assert exit_code(bench_triton.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err and argv[1] in err


@pytest.mark.parametrize("argv", [["--seq", "64q"], ["--rounds", "0"], ["--stream-mib", "8"], ["--rounds", "x"]])
def test_bench_share_bad_arguments(capsys, argv):
    from sparq_sim.kernels import bench_share
    assert exit_code(bench_share.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err and argv[1] in err


def test_bench_share_summary_is_median_and_range():
    from sparq_sim.kernels.bench_share import summary
    rows = [{"stream_Bps": s * 1e9, "latency_s": lat * 1e-9, "attn_cpu_Bps": a * 1e9, "share": a / s}
            for s, lat, a in [(20.0, 200.0, 15.0), (10.0, 300.0, 5.0), (30.0, 100.0, 30.0)]]
    text = summary(rows)
    assert "stream_Bps: median 20.00 GB/s (10.00-30.00)" in text
    assert "latency_s: median 200.00 ns (100.00-300.00)" in text
    assert "attn_cpu_Bps: median 15.00 GB/s (5.00-30.00)" in text
    assert "share: median 0.75 (0.50-1.00)" in text
