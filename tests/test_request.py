"""Whole requests: prefill flops, bytes and time by hand; the decode sum over a growing S."""

import json
import math

import pytest

from sparq_sim.cli import main
from sparq_sim.hardware import load_device
from sparq_sim.models import get_preset
from sparq_sim.prefill import prefill
from sparq_sim.request import crossover_seq, evaluation_points, predict_request

H100_BW = 3.35e12 * 0.90          # datasheet x achievable fraction
H100_FP16 = 989.4e12


def test_prefill_llama2_7b_32k_by_hand():
    m, p = get_preset("llama-2-7b"), 32768
    pre = prefill(load_device("h100"), m, p)
    weights, attention = pre.phases
    assert weights.flops == 2 * 6.738e9 * p
    assert attention.flops == 2 * 32 * 32 * 128 * p * p      # 4 L H d_h P^2 / 2
    assert weights.bytes == 6.738e9 * 2
    kv_one = 32 * 32 * 128 * 2 * p                           # one of K or V, all layers
    assert attention.bytes == kv_one * (2 + 2)               # K, V written, then read once
    # compute-bound at 32k: flops over the fp16 tensor-core peak
    assert weights.bound == attention.bound == "compute"
    expected = 2 * 6.738e9 * p / H100_FP16 + 2 * 32 * 32 * 128 * p * p / H100_FP16
    assert pre.time_s == pytest.approx(expected, rel=1e-12)
    assert pre.time_s == pytest.approx(0.731, abs=0.001)
    sparq = prefill(load_device("h100"), m, p, method="sparq", store_k="twice")
    assert sparq.phases[1].bytes == kv_one * (3 + 2)         # the extra K_t copy is written too


def test_prefill_short_prompt_is_memory_bound():
    pre = prefill(load_device("h100"), get_preset("llama-2-7b"), 16)
    assert pre.phases[0].bound == "memory"
    assert pre.phases[0].time_s == pytest.approx(6.738e9 * 2 / H100_BW)


def dense_step_by_hand(s, layers=32, heads=32, d_h=128, params=6.738e9):
    """Ideal dense step of Llama 2 7B on the H100, batch 1, memory-bound: bytes / bandwidth + launches."""
    row = d_h * 2
    inst = layers * heads
    weights = layers * math.ceil(params * 2 / layers / 32) * 32   # per layer, in 32-byte sectors
    moved = weights + inst * (row + 2 * s * row + row) + 2 * inst * row
    return moved / H100_BW + layers * 4e-6


def test_decode_sum_over_growing_seq_by_hand():
    p, n = 4096, 300
    q = predict_request(load_device("h100"), get_preset("llama-2-7b"), p, n,
                        implementation="ideal", timing="roofline")
    steps = [dense_step_by_hand(p + j) for j in range(1, n)]
    assert q.dense.total_s - q.dense.ttft_s == pytest.approx(sum(steps), rel=1e-9)
    assert q.dense.tpot_mean_s == pytest.approx(sum(steps) / (n - 1), rel=1e-9)
    # p99 of a linearly growing step time: numpy's linear-interpolation percentile of the steps
    rank = 0.99 * (n - 2)
    lo = int(rank)
    p99 = steps[lo] + (rank - lo) * (steps[lo + 1] - steps[lo])
    assert q.dense.tpot_p99_s == pytest.approx(p99, rel=1e-9)
    assert q.dense.ttft_s == prefill(load_device("h100"), get_preset("llama-2-7b"), p).time_s
    assert len(q.points) == 17


def test_interpolated_sparq_decode_matches_every_step():
    """k = S*C/2 rounds at every S: the interpolation must stay within 0.1% of all steps evaluated."""
    d, m = load_device("a100"), get_preset("llama-3-8b")
    fast = predict_request(d, m, 1000, 200, implementation="ideal", timing="roofline")
    full = predict_request(d, m, 1000, 200, implementation="ideal", timing="roofline", points=10_000)
    assert len(full.points) == 199
    for method in ("dense", "sparq"):
        a, b = getattr(fast, method), getattr(full, method)
        assert a.total_s == pytest.approx(b.total_s, rel=1e-3)
        assert a.tpot_p99_s == pytest.approx(b.tpot_p99_s, rel=1e-3)


def test_single_token_request_is_its_prefill():
    q = predict_request(load_device("h100"), get_preset("llama-2-7b"), 1024, 1)
    assert q.dense.total_s == q.dense.ttft_s and q.dense.tpot_mean_s == 0


def test_crossover_is_the_first_faster_seq():
    d, m = load_device("h100"), get_preset("llama-2-7b")
    q = predict_request(d, m, 32768, 16, implementation="ideal", timing="roofline")
    s = q.sparq_faster_from_seq
    assert s is not None and 1 < s < 32768
    from sparq_sim.predict import predict
    from sparq_sim.workload import Workload
    at = predict(Workload.build(m, s), d, "ideal", "roofline")
    before = predict(Workload.build(m, s - 1), d, "ideal", "roofline")
    assert at.sparq.step.time_s < at.dense.step.time_s
    assert before.sparq.step.time_s >= before.dense.step.time_s
    assert crossover_seq(lambda x: x >= 37, 1, 100) == 37
    assert crossover_seq(lambda x: False, 1, 100) is None


def test_evaluation_points_cover_both_ends():
    assert evaluation_points(5, 5) == [5]
    pts = evaluation_points(10, 1000, 5)
    assert pts[0] == 10 and pts[-1] == 1000 and len(pts) == 5


def test_cli_request_json_and_table(capsys):
    rc = main(["predict", "--hw", "h100", "--prompt", "32k", "--generate", "1k", "--impl", "ideal",
               "--timing", "roofline", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["workload"]["seq"] == 32768
    for method in ("dense", "sparq"):
        assert set(out["request"][method]) >= {"ttft_s", "tpot_mean_s", "tpot_p99_s", "total_s"}
    assert out["request"]["sparq"]["tpot_mean_s"] < out["request"]["dense"]["tpot_mean_s"]
    rc = main(["predict", "--hw", "h100", "--seq", "4k", "--format", "json"])
    assert rc == 0 and "request" not in json.loads(capsys.readouterr().out)
    rc = main(["predict", "--hw", "h100", "--prompt", "8k", "--generate", "64"])
    out = capsys.readouterr().out
    assert rc == 0 and "time to first token" in out and "time per output token (p99)" in out


@pytest.mark.parametrize("argv, message", [
    (["--prompt", "8k"], "--prompt and --generate go together"),
    (["--prompt", "8k", "--generate", "0"], "bad --generate"),
    ([], "required: --seq"),
])
def test_cli_request_bad_input(capsys, argv, message):
    rc = main(["predict", "--hw", "h100", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
