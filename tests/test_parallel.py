"""Tensor parallelism: weight and KV split, ring all-reduce bytes and time, `plan --tp`, by hand."""

import json
import math

import pytest

from sparq_sim import capacity, parallel
from sparq_sim.batch import mixed_step
from sparq_sim.cli import main
from sparq_sim.errors import UserError
from sparq_sim.hardware import list_devices, load_device
from sparq_sim.models import get_preset
from sparq_sim.predict import predict
from sparq_sim.workload import Workload


def test_links_of_shipped_devices():
    for d in list_devices():
        link = parallel.device_link(d)
        if d.kind == "cpu":
            assert link is None
        else:
            assert link.bandwidth_Bps.value > 0 and link.latency_s.value > 0
            assert link.bandwidth_Bps.source and link.latency_s.basis == "assumed"
    assert parallel.device_link(load_device("h100")).bandwidth_Bps.value == 450e9      # 900 GB/s both ways
    assert parallel.device_link(load_device("h100-pcie")).bandwidth_Bps.value == 64e9  # PCIe Gen5 x16


def test_split_llama2_70b_over_8_by_hand():
    m = get_preset("llama-2-70b")                        # 80 layers, 64 heads, 8 KV heads
    s = parallel.shard_model(m, 8)
    assert (s.heads, s.kv_heads, s.layers, s.d_model) == (8, 1, 80, 8192)
    assert capacity.weights_bytes(s) == pytest.approx(68.977e9 * 2 / 8)
    assert capacity.kv_bytes_per_token(s, "float16", "dense") == 80 * 1 * 128 * 2 * 2 == 40_960
    assert capacity.kv_bytes_per_token(s, "float16", "sparq") == 61_440
    four = parallel.shard_model(m, 4)
    assert (four.heads, four.kv_heads) == (16, 2)


def test_kv_heads_replicated_past_their_count():
    s = parallel.shard_model(get_preset("llama-3-8b"), 16)   # 8 KV heads over 16 devices
    assert (s.heads, s.kv_heads) == (2, 1)
    assert capacity.kv_bytes_per_token(s, "float16", "dense") == 32 * 1 * 128 * 2 * 2
    with pytest.raises(UserError, match="does not divide"):
        parallel.shard_model(get_preset("llama-2-70b"), 3)
    with pytest.raises(UserError, match="KV heads"):
        parallel.check_tp(get_preset("llama-3-8b").__class__("x", 2, 24, 6, 128, 3072, 1e9), 4)


def test_ring_allreduce_bytes_and_time_by_hand():
    m = get_preset("llama-2-70b")
    n = parallel.step_allreduce_bytes(m, 16)               # batch 16 x d_model 8192 x 2 bytes
    assert n == 16 * 8192 * 2 == 262_144
    assert parallel.allreduce_bytes(n, 8) == 2 * 7 / 8 * 262_144 == 458_752
    assert parallel.step_communication_bytes(m, 8, 16) == 2 * 80 * 458_752 == 73_400_320
    link = parallel.device_link(load_device("h100"))
    one = 2 * 7 * 1e-6 + 458_752 / 450e9
    assert parallel.allreduce_time(link, 8, n) == pytest.approx(one)
    assert parallel.communication_time(load_device("h100"), m, 8, 16) == pytest.approx(2 * 80 * one)
    assert parallel.communication_time(load_device("h100"), m, 1, 16) == 0
    with pytest.raises(UserError, match="no \\[link\\]"):
        parallel.communication_time(load_device("epyc-7763"), m, 2, 1)


def test_plan_tp8_step_is_one_device_plus_allreduces():
    d, m = load_device("h100"), get_preset("llama-2-70b")
    p = capacity.plan(d, m, 32768, tp=8)
    cap = 85_899_345_920
    free = cap - 0.1 * cap - 68.977e9 * 2 / 8
    assert p.tp == 8 and p.weights_bytes == pytest.approx(68.977e9 * 2 / 8)
    assert p.dense.max_batch == math.floor(free / (40_960 * 32768)) == 44
    assert p.sparq.max_batch == math.floor(free / (61_440 * 32768 + 80 * 128 * 4)) == 29
    shard = parallel.shard_model(m, 8)
    one = predict(Workload.build(shard, 32768, batch=44), d, "ideal", "roofline")
    comm = 2 * 80 * (14e-6 + 2 * 7 / 8 * 44 * 8192 * 2 / 450e9)
    assert p.dense.step_time_s == pytest.approx(one.dense.step.time_s + comm, rel=1e-12)
    assert p.dense.tokens_per_s == pytest.approx(44 / (one.dense.step.time_s + comm))
    step = mixed_step(d, m, [32768] * 44, "dense", tp=8)
    assert step.time_s == pytest.approx(p.dense.step_time_s, rel=1e-12)
    assert step.communication_s == pytest.approx(comm)


def test_plan_tp_auto_takes_smallest_that_fits():
    d, m = load_device("h100"), get_preset("llama-2-70b")
    # tp 1: 138 GB of weights exceed 80 GiB; tp 2: 69 GB + 8.6 GB reserve leaves 8.3 GB, one 32k
    # SparQ sequence needs 246 kB x 32768 = 8.05 GB
    assert capacity.smallest_tp(d, m, 32768) == 2
    assert capacity.plan(d, m, 32768, tp="auto").tp == 2
    assert capacity.smallest_tp(d, get_preset("llama-2-7b"), 32768) == 1
    with pytest.raises(UserError, match="does not fit"):
        capacity.smallest_tp(load_device("a10g"), m, 1 << 20)


def test_cli_plan_tp_json(capsys):
    rc = main(["plan", "--hw", "h100", "--model", "llama-3-70b", "--seq", "32k", "--tp", "4",
               "--impl", "ideal", "--timing", "roofline", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["tp"] == 4
    assert out["per_device"]["weights_bytes"] == pytest.approx(70.554e9 * 2 / 4)
    assert out["dense"]["kv_bytes_per_token"] == 80 * 2 * 128 * 2 * 2
    for argv, message in ((["--tp", "3"], "does not divide"), (["--tp", "x"], "bad --tp"),
                          (["--tp", "0"], "bad --tp")):
        rc = main(["plan", "--hw", "h100", "--model", "llama-2-70b", "--seq", "32k", *argv])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
