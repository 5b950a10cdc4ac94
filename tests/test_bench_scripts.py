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
