"""Mixed decode batches: KV memory and per-sequence k by hand, step time against uniform batches."""

import json

import pytest

from sparq_sim import batch
from sparq_sim.cli import main
from sparq_sim.errors import UserError
from sparq_sim.hardware import load_device
from sparq_sim.models import get_preset
from sparq_sim.predict import predict
from sparq_sim.workload import Workload


def test_mixed_kv_memory_llama3_8b_by_hand():
    m = get_preset("llama-3-8b")                     # 32 layers, 8 KV heads, d_h 128
    seqs = [4096, 32768, 8192]
    one = 32 * 8 * 128 * 2                           # bytes of K (or V) per token, fp16
    assert batch.kv_bytes(m, seqs, "dense") == 2 * one * (4096 + 32768 + 8192) == 5_905_580_032
    mean = 32 * 8 * 128 * 4                          # fp32 running value mean per sequence
    assert batch.kv_bytes(m, seqs, "sparq") == 3 * one * 45056 + 3 * mean
    assert batch.kv_bytes(m, seqs, "sparq", store_k="once", reallocate=False) == 2 * one * 45056
    settings = batch.sequence_settings(m, seqs)      # compression 1/8: r = 16, k = S/16
    assert [(s.r, s.k) for s in settings] == [(16, 256), (16, 2048), (16, 512)]
    assert [s.kv_bytes_dense for s in settings] == [2 * one * s for s in seqs]
    assert settings[1].kv_bytes_sparq == 3 * one * 32768 + mean
    assert [s.k for s in batch.sequence_settings(m, [100, 5000], k=300)] == [100, 300]


def test_uniform_mixed_batch_is_predicts_step():
    d, m = load_device("h100"), get_preset("llama-2-7b")
    p = predict(Workload.build(m, 8192, batch=4), d, "ideal", "roofline")
    for method in ("dense", "sparq"):
        step = batch.mixed_step(d, m, [8192] * 4, method, implementation="ideal")
        assert step.time_s == pytest.approx(getattr(p, method).step.time_s, rel=1e-12)


def test_mixed_attention_pays_launches_once():
    """Two lengths: attention = the two batch-1 attentions minus one set of launches (32 layers x 4 us)."""
    d, m = load_device("h100"), get_preset("llama-2-7b")
    a = predict(Workload.build(m, 4096), d, "ideal", "roofline")
    b = predict(Workload.build(m, 32768), d, "ideal", "roofline")
    dense = batch.mixed_step(d, m, [32768, 4096], "dense", implementation="ideal")
    assert dense.attention_s == pytest.approx(a.dense.attention.time_s + b.dense.attention.time_s
                                              - 32 * 4e-6, rel=1e-12)
    sparq = batch.mixed_step(d, m, [32768, 4096], "sparq", implementation="ideal")
    # SparQ has two launching kernels per layer (step 1, step 2)
    assert sparq.attention_s == pytest.approx(a.sparq.attention.time_s + b.sparq.attention.time_s
                                              - 2 * 32 * 4e-6, rel=1e-12)
    weights = predict(Workload.build(m, 32768, batch=2), d, "ideal", "roofline")
    assert dense.other_s == pytest.approx(weights.dense.step.time_s - weights.dense.attention.time_s)


def test_parse_lengths_list_csv_distribution(tmp_path):
    assert batch.parse_lengths("4k,32k, 8000") == [4096, 32768, 8000]
    f = tmp_path / "req.csv"
    f.write_text("arrival_s,prompt,generate\n0.0,1000,24\n1.5,2k,48\n")
    assert batch.parse_lengths(str(f)) == [1024, 2096]
    g = tmp_path / "plain.csv"
    g.write_text("4096\n8k\n")
    assert batch.parse_lengths(str(g)) == [4096, 8192]
    a = batch.parse_lengths("uniform:low=1k,high=2k,n=50", seed=7)
    assert a == batch.parse_lengths("uniform:low=1k,high=2k,n=50", seed=7)
    assert a != batch.parse_lengths("uniform:low=1k,high=2k,n=50", seed=8)
    assert len(a) == 50 and 1024 <= min(a) and max(a) <= 2048
    ln = batch.parse_lengths("lognormal:median=8k,sigma=0,n=3")
    assert ln == [8192, 8192, 8192]


@pytest.mark.parametrize("spec, message", [
    ("foo:n=3", "unknown length distribution"),
    ("uniform:low=5,n=3", "missing high"),
    ("uniform:low=5,high=9,n=3,x=1", "unknown x"),
    ("uniform:low=9,high=5,n=3", "low <= high"),
    ("4k,zz", "bad --seqs"),
    ("nothere.csv", "does not exist"),
])
def test_parse_lengths_bad(spec, message):
    with pytest.raises(UserError, match=message):
        batch.parse_lengths(spec)


def test_cli_mixed_batch(capsys):
    rc = main(["predict", "--hw", "h100", "--model", "llama-3-8b", "--seqs", "4k,32k,8k", "--impl", "ideal",
               "--timing", "roofline", "--format", "json"])
    out = json.loads(capsys.readouterr().out)["mixed_batch"]
    assert rc == 0 and out["batch"] == 3 and out["dense"]["kv_bytes"] == 5_905_580_032
    assert [s["k"] for s in out["sequences"]] == [256, 2048, 512]
    assert out["sparq"]["step"]["time_s"] < out["dense"]["step"]["time_s"]
    rc = main(["predict", "--hw", "h100", "--seqs", "uniform:low=1,high=0,n=2"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
