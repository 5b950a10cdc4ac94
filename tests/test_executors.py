"""Parallel sweeps: local processes and a local Dask cluster give the same rows as one process."""

import pytest

from sparq_sim import executors
from sparq_sim.cli import main

SWEEP = ["sweep", "--hw", "h100,a10g", "--seq", "4k..16k", "--r", "8,16", "--k", "S/8,100000",
         "--batch", "1,4", "--impl", "ideal", "--timing", "roofline"]
SERVE = ["serve-sim", "--hw", "h100", "--model", "llama-3-8b", "--rate", "1,3,6", "--prompt", "4k",
         "--generate", "128", "--duration", "30", "--impl", "ideal", "--timing", "roofline"]


def run_to(tmp_path, name, argv, *extra):
    out = tmp_path / name
    assert main(argv + ["--out", str(out), *extra]) == 0
    return out.read_bytes()


def test_map_points_keeps_order():
    assert executors.map_points(abs, [-3, 1, -2], workers=2) == [3, 1, 2]
    assert executors.map_points(abs, [-3], workers=4) == [3]


@pytest.fixture(scope="module")
def pool_rows(tmp_path_factory):
    """The sweep and the serve-sim grid in 2 local processes (the default path)."""
    tmp = tmp_path_factory.mktemp("pool")
    return run_to(tmp, "pool.csv", SWEEP, "--workers", "2"), run_to(tmp, "serve.csv", SERVE, "--workers", "2")


def test_process_pool_equals_one_process(tmp_path, pool_rows, capsys):
    sweep, serve = pool_rows
    assert run_to(tmp_path, "serial.csv", SWEEP, "--workers", "1") == sweep
    assert sweep.count(b"\n") == 1 + 2 * 3 * 2 * 2     # header; devices x S x batch x r (k = 100000 skipped)
    assert run_to(tmp_path, "serve1.csv", SERVE, "--workers", "1") == serve
    assert serve.count(b"\n") == 7          # header + 3 rates x 2 methods
    capsys.readouterr()


def test_dask_local_cluster_gives_the_same_rows(tmp_path, pool_rows, capsys):
    distributed = pytest.importorskip("distributed")
    sweep, serve = pool_rows
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert run_to(tmp_path, "dask.csv", SWEEP, "--cluster", address) == sweep
        assert run_to(tmp_path, "serve_dask.csv", SERVE, "--cluster", address) == serve
    capsys.readouterr()


def test_unreachable_cluster_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", "1s")
    rc = main(SWEEP + ["--out", str(tmp_path / "x.csv"), "--cluster", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert rc == 2 and "Dask scheduler" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_malformed_cluster_address_is_one_line(tmp_path, capsys):
    """An address Dask cannot parse (no port) is bad input, not a ValueError traceback."""
    pytest.importorskip("distributed")
    rc = main(SWEEP + ["--out", str(tmp_path / "x.csv"), "--cluster", "x"])
    err = capsys.readouterr().err
    assert rc == 2 and "bad --cluster 'x'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()
