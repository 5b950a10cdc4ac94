"""The timing harness's bookkeeping (no timing claims): statistics, rotation, cache location."""

import json

import pytest

from sparq_sim.kernels import timing


def test_summarize_statistics():
    r = timing.summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (r.median_s, r.min_s, r.max_s, r.n) == (3.0, 1.0, 5.0, 5)
    assert r.p10_s == pytest.approx(1.4) and r.p90_s == pytest.approx(4.6)
    assert r.iqr_s == pytest.approx(2.0)


def test_time_call_rotates_copies_and_warms_up():
    made, seen = [], []

    def make():
        made.append(len(made))
        return (made[-1],)

    res = timing.time_call(seen.append, make, warmup=2, repeats=6, copies=3)
    assert len(made) == 3 and res.n == 6 and res.copies == 3
    assert seen == [0, 1, 2, 0, 1, 2, 0, 1]
    with pytest.raises(ValueError):
        timing.time_call(seen.append, make, repeats=0)


def test_copies_for_exceeds_llc():
    llc = 32 << 20
    assert timing.copies_for(1e9, 3e9, llc) == 1
    n = timing.copies_for(16 << 20, 200 << 20, llc)
    assert n * (16 << 20) >= 4 * llc
    assert timing.copies_for(1 << 20, 3e9, llc, memory_budget=4e9) == 1   # memory bound wins


def test_stream_bandwidth_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARQ_SIM_CACHE_DIR", str(tmp_path))
    assert timing.cache_dir() == tmp_path
    info = {"version": timing.STREAM_VERSION, "Bps": 1.5e10, "cpu_model": timing.cpu_model(), "threads": timing._threads(), "date": "2024-01-01"}
    (tmp_path / "stream_bandwidth.json").write_text(json.dumps(info))
    bps, got = timing.measure_stream_bandwidth()
    assert bps == 1.5e10 and got["cached"] and got["date"] == "2024-01-01"


def test_cache_dir_respects_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARQ_SIM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert timing.cache_dir() == tmp_path / "sparq-sim"


def test_steady_allocator_reuses_freed_memory():
    """After steady_allocator(), a large temporary freed and allocated again is not page-faulted
    afresh (glibc only; the harness records what it did either way)."""
    import resource

    np = pytest.importorskip("numpy")
    how = timing.steady_allocator()
    assert timing.environment()["allocator"] == how
    if not how.startswith("glibc mallopt"):
        pytest.skip(how)
    n = 64 * 1024 ** 2 // 8
    a = np.ones(n)
    del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    b = np.ones(n)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert b.sum() == n
    assert faults < 64 * 1024 ** 2 // 4096 // 10              # fresh pages would be 16,384 faults
