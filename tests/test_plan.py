"""Capacity planning: KV memory against hand-computed figures, max batch within capacity, `plan` CLI."""

import json

import pytest

from sparq_sim import capacity
from sparq_sim.hardware import list_devices, load_device
from sparq_sim.models import PRESETS, get_preset


def test_kv_bytes_llama2_7b_by_hand():
    m = get_preset("llama-2-7b")            # 32 layers, 32 KV heads, d_h 128, fp16
    one = 32 * 32 * 128 * 2                 # 262,144 bytes of K (or V) per token
    assert capacity.kv_bytes_per_token(m, "float16", "dense") == 2 * one == 524_288
    assert capacity.kv_bytes_per_token(m, "float16", "sparq", "twice") == 3 * one == 786_432
    assert capacity.kv_bytes_per_token(m, "float16", "sparq", "once") == 524_288
    assert capacity.kv_bytes_per_token(m, "int8", "dense") == 262_144
    assert capacity.state_bytes_per_sequence(m, "sparq") == 32 * 32 * 128 * 4
    assert capacity.state_bytes_per_sequence(m, "sparq", reallocate=False) == 0
    assert capacity.state_bytes_per_sequence(m, "dense") == 0


def test_kv_bytes_llama3_8b_gqa_by_hand():
    m = get_preset("llama-3-8b")            # 32 layers, 8 KV heads (GQA), d_h 128
    one = 32 * 8 * 128 * 2                  # 65,536
    assert capacity.kv_bytes_per_token(m, "float16", "dense") == 131_072
    assert capacity.kv_bytes_per_token(m, "bf16", "sparq") == 196_608
    assert capacity.kv_bytes_per_token(m, "float16", "sparq") == 1.5 * capacity.kv_bytes_per_token(m, "float16", "dense")
    assert one * 2 == 131_072


def test_plan_llama2_h100_by_hand():
    d = load_device("h100")
    p = capacity.plan(d, get_preset("llama-2-7b"), 32768)
    cap = 85_899_345_920
    free = cap - 0.10 * cap - 6.738e9 * 2
    assert p.dense.kv_bytes_per_sequence == 524_288 * 32768
    assert p.sparq.kv_bytes_per_sequence == 786_432 * 32768 + 32 * 32 * 128 * 4
    assert p.dense.max_batch == int(free // (524_288 * 32768)) == 3
    assert p.sparq.max_batch == int(free // (786_432 * 32768 + 524_288)) == 2
    assert p.dense.tokens_per_s > 0 and p.sparq.tokens_per_s > p.dense.tokens_per_s / 3
    assert p.best["batch"] <= p.sparq.max_batch
    assert p.best["compression"] in capacity.COMPRESSION_GRID


@pytest.mark.parametrize("device", [d.name for d in list_devices()])
def test_max_batch_never_exceeds_capacity(device):
    d = load_device(device)
    for model in PRESETS.values():
        for kv in ("float16", "int8"):
            for seq in (1024, 4096, 32768, 131072, 1 << 20):
                for method, store in (("dense", "twice"), ("sparq", "twice"), ("sparq", "once")):
                    per_seq = (capacity.kv_bytes_per_token(model, kv, method, store) * seq
                               + capacity.state_bytes_per_sequence(model, method))
                    weights = capacity.weights_bytes(model)
                    reserve = capacity.RESERVE_FRACTION * d.capacity_bytes.value
                    b = capacity.max_batch(d.capacity_bytes.value, weights, reserve, per_seq)
                    assert b >= 0
                    if b:
                        assert weights + reserve + b * per_seq <= d.capacity_bytes.value
                    assert weights + reserve + (b + 1) * per_seq > d.capacity_bytes.value


def test_nothing_fits_is_zero_not_a_crash(cli):
    code, out, err = cli("plan", "--hw", "a10g", "--model", "llama-2-70b", "--seq", "4k", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["dense"]["max_batch"] == 0 and data["sparq"]["max_batch"] == 0
    assert data["dense"]["tokens_per_s"] == 0 and data["best"] is None
    assert any("not even one sequence" in n for n in data["notes"])


def test_plan_json_keys_and_compression_list(cli):
    code, out, err = cli("plan", "--hw", "a100-80gb", "--model", "llama-3-8b", "--seq", "32k",
                         "--compression", "1/4,1/8", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    for method in ("dense", "sparq"):
        assert {"kv_bytes_per_token", "max_batch", "tokens_per_s"} <= set(data[method])
    assert data["dense"]["kv_bytes_per_token"] == 131_072
    assert data["sparq"]["kv_bytes_per_token"] == 196_608
    assert data["sparq"]["compression"] == 0.25
    assert [v["compression"] for v in data["sparq_variants"]] == [0.25, 0.125]
    assert data["best"]["compression"] in (0.25, 0.125)


def test_plan_table_and_plot(cli, tmp_path):
    png = tmp_path / "plan.png"
    code, out, err = cli("plan", "--hw", "h100", "--model", "llama-2-7b", "--seq", "4k", "--plot", png)
    assert code == 0, err
    assert "KV bytes per token" in out and "max batch" in out and "best within memory" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_series():
    from sparq_sim.plots import tokens_vs_batch_chart
    import tempfile, os
    p = capacity.plan(load_device("h100"), get_preset("llama-2-7b"), 4096)
    with tempfile.TemporaryDirectory() as tmp:
        series = tokens_vs_batch_chart(p.curves, {"dense": p.dense.max_batch}, os.path.join(tmp, "a.svg"), "t")
    assert set(series) == {"dense", "SparQ 1/8"}
    assert series["dense"]["batch"][-1] == p.dense.max_batch
    assert series["SparQ 1/8"]["batch"][-1] == p.sparq.max_batch


@pytest.mark.parametrize("argv,needle", [
    (["--hw", "h100", "--seq", "4k", "--plot", "x.pdf"], "bad --plot 'x.pdf'"),
    (["--hw", "h100", "--seq", "4k", "--reserve", "1.5"], "bad --reserve"),
    (["--hw", "h100", "--seq", "4k", "--compression", "3"], "bad --compression"),
    (["--hw", "h100", "--seq", "4k", "--threads", "8"], "--threads does not apply"),
    (["--hw", "h100", "--seq", "4k", "--impl", "llama.cpp"], "models a CPU"),
])
def test_plan_bad_input(cli, argv, needle):
    code, out, err = cli("plan", *argv)
    assert code == 2 and needle in err and "Traceback" not in err


def test_plan_imports_neither_torch_nor_matplotlib(fresh_cli):
    codes, modules = fresh_cli(['plan', '--hw', 'h100', '--seq', '8k', '--format', 'json'],
                               ['predict', '--hw', 'epyc-7763', '--seq', '8k', '--impl', 'llama.cpp', '--threads', '8'])
    assert codes[0] == 0
    bad = [m for m in ('torch', 'matplotlib') if m in modules]
    assert not bad, bad
