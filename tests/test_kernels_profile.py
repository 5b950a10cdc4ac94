"""`sparq-sim profile` end to end on a tiny workload (checks output shape, not speed)."""

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("numba")

from sparq_sim.kernels import timing  # noqa: E402


@pytest.fixture
def cached_stream(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARQ_SIM_CACHE_DIR", str(tmp_path))
    info = {"version": timing.STREAM_VERSION, "Bps": 2.0e10, "cpu_model": timing.cpu_model(),
            "threads": timing._threads(), "date": "2024-01-01T00:00:00+00:00"}
    (tmp_path / "stream_bandwidth.json").write_text(json.dumps(info))


ARGS = ["profile", "--seq", "512", "--heads", "4", "--kv-heads", "2", "--head-dim", "16", "--r", "4",
        "--k", "32", "--local-window", "4", "--dtype", "float32", "--warmup", "1", "--repeats", "3", "--copies", "2"]


def test_profile_json(cli, cached_stream):
    code, out, err = cli(*ARGS, "--format", "json")
    assert code == 0, err
    res = json.loads(out)
    assert set(res["methods"]) == {"dense", "sparq"}
    for e in res["methods"].values():
        t = e["timing"]
        assert t["n"] == 3 and t["min_s"] <= t["median_s"] <= t["max_s"]
        assert e["ideal_bytes"] > 0 and e["GBps_ideal"] > 0 and "fraction_of_stream" in e
    assert res["methods"]["sparq"]["ideal_bytes"] < res["methods"]["dense"]["ideal_bytes"]
    assert res["stream"]["Bps"] == 2.0e10 and res["stream"]["date"].startswith("2024")
    env = res["environment"]
    assert env["cpu_model"] and env["threads"] >= 1 and env["torch_version"] and env["numba_version"]
    assert res["copies"] == 2 and res["case"]["kv_heads"] == 2


def test_profile_table(cli, cached_stream):
    code, out, err = cli(*ARGS, "--impl", "torch-eager")
    assert code == 0, err
    assert "SparQ speedup" in out and "dense (torch-eager)" in out


@pytest.mark.parametrize("extra", [["--impl", "nope"], ["--dtype", "int8"], ["--k", "9999"], ["--repeats", "0"]])
def test_profile_bad_input_exit_2(cli, cached_stream, extra):
    code, out, err = cli(*ARGS, *extra)
    assert code == 2 and "error" in err and err.count("\n") == 1


def test_markdown_table_pads_columns():
    from sparq_sim.kernels.profiling import markdown_table
    assert markdown_table([["1", "abc"], ["22", "d"]], ["x", "y"]) == (
        "| x  | y   |\n|----|-----|\n| 1  | abc |\n| 22 | d   |")


def test_profile_huge_pages_records_the_layout(cli, cached_stream):
    code, out, err = cli(*ARGS, "--huge-pages", "--format", "json")
    assert code == 0, err
    res = json.loads(out)
    assert res["case"]["huge_pages"] is True and res["inputs_huge_page_bytes"] >= 0


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_huge_page_inputs_equal_plain_ones(dtype):
    """Huge-page inputs hold the same values, contiguous, as the plain allocation of the same seed."""
    from sparq_sim.kernels.profiling import Case, make_inputs
    case = Case(batch=1, heads=4, kv_heads=2, seq=300, head_dim=16, r=4, k=32, dtype=dtype)
    plain = make_inputs(case, "cpu", 7)
    huge = make_inputs(Case(**{**case.__dict__, "huge_pages": True}), "cpu", 7)
    for a, b in zip(plain, huge):
        assert a.shape == b.shape and a.dtype == b.dtype and b.is_contiguous() and a.is_contiguous()
        assert bool((a == b).all())
    assert huge[3].shape == (1, 2, 16, 300)
