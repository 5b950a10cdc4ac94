"""Bytes against hand-computed values (the per-head formulas of docs/method.md), and granularity rounding."""

import math

import pytest

from sparq_sim.hardware import load_device
from sparq_sim.implementations import get_implementation
from sparq_sim.models import get_preset
from sparq_sim.predict import predict
from sparq_sim.traffic import GATHER, SPARSE_ROWS, STREAM, Access, ideal_attention_bytes
from sparq_sim.workload import Workload, settings_for_compression

LLAMA2 = get_preset("llama-2-7b")
LLAMA3 = get_preset("llama-3-8b")


def test_dense_bytes_llama2_by_hand():
    w = Workload(model=LLAMA2, seq=4096, batch=1, r=16, k=256)
    # per head 2*4096*128 + 2*128 = 1,048,832 elements; x 32 heads x 32 layers x 2 bytes
    assert ideal_attention_bytes(w, "dense") == 2_148_007_936


def test_sparq_bytes_llama2_by_hand():
    w = Workload(model=LLAMA2, seq=4096, batch=1, r=16, k=256)
    # per head 4096*16 + 2*256*128 + 4*128 = 131,584 elements; x 1024 heads x 2 bytes
    assert ideal_attention_bytes(w, "sparq") == 269_484_032


def test_batch_and_dtype_scale_linearly():
    w1 = Workload(model=LLAMA2, seq=4096, batch=1, r=16, k=256)
    w3 = Workload(model=LLAMA2, seq=4096, batch=3, r=16, k=256, kv_dtype="float32")
    assert ideal_attention_bytes(w3, "dense") == 6 * ideal_attention_bytes(w1, "dense")
    assert ideal_attention_bytes(w3, "sparq") == 6 * ideal_attention_bytes(w1, "sparq")


def test_gqa_counts_kv_terms_per_kv_head():
    w = Workload(model=LLAMA3, seq=2048, batch=2, r=16, k=64)
    # dense per (batch, layer): 8 KV heads * 2*2048*128 + 32 query heads * 2*128 = 4,202,496
    assert ideal_attention_bytes(w, "dense") == 4_202_496 * 2 * 32 * 2
    # sparq: 8*(2048*16 + 2*64*128) + 32*2*128 + 8*2*128 (value mean) = 403,456
    assert ideal_attention_bytes(w, "sparq") == 403_456 * 2 * 32 * 2


def test_without_reallocation_value_mean_traffic_is_dropped():
    w = Workload(model=LLAMA3, seq=2048, batch=2, r=16, k=64, reallocate=False)
    assert ideal_attention_bytes(w, "sparq") == (403_456 - 8 * 2 * 128) * 2 * 32 * 2


@pytest.mark.parametrize("store_k", ["once", "twice"])
@pytest.mark.parametrize("model", [LLAMA2, LLAMA3])
def test_ideal_implementation_requests_exactly_the_formula(store_k, model):
    w = Workload(model=model, seq=8192, batch=2, r=32, k=512, store_k=store_k)
    impl = get_implementation("ideal")
    for method in ("dense", "sparq"):
        phases = impl.attention_phases(w, method)
        requested = sum(p.requested_bytes() for p in phases if p.in_formula)
        assert requested == ideal_attention_bytes(w, method)


@pytest.mark.parametrize("compression", [1 / 4, 1 / 8, 1 / 16])
@pytest.mark.parametrize("seq", [4096, 32768])
def test_compression_gives_the_requested_ratio(compression, seq):
    r, k = settings_for_compression(128, seq, compression)
    assert r == 128 * compression and k == seq * compression / 2
    w = Workload.build(LLAMA2, seq, compression=compression)
    assert (w.r, w.k) == (r, k)
    # Only the O(d_h) terms (q, output, value mean) keep the ratio from being exact.
    assert w.compression == pytest.approx(compression, rel=0.01)


def test_compression_rounds_and_stays_at_least_one():
    assert settings_for_compression(128, 8, 1 / 1024) == (1, 1)
    assert settings_for_compression(64, 1000, 0.1) == (6, 50)


def test_explicit_r_and_k_win_over_compression():
    w = Workload.build(LLAMA2, 4096, r=8, compression=1 / 4)
    assert (w.r, w.k) == (8, 512)


def test_stream_rounds_each_run_to_granularity():
    assert Access(STREAM, 3, 100).moved_bytes(32) == 3 * 128
    assert Access(STREAM, 3, 100).requested_bytes() == 300


def test_four_byte_gathers_move_a_whole_sector_or_line():
    a = Access(GATHER, 1000, 4, row_bytes=4096)
    assert a.moved_bytes(32) == 1000 * 32
    assert a.moved_bytes(64) == 1000 * 64


def test_unaligned_row_gather_counts_straddled_sectors():
    # 48-byte rows packed back to back: offsets 0 and 16 within a 32-byte sector alternate;
    # offset 0 touches 2 sectors, offset 16 touches 2 sectors (16..64) -> 2 on average.
    assert Access(GATHER, 10, 48).moved_bytes(32) == 10 * 2 * 32
    # 20-byte rows start at offsets 0, 4, ..., 28: those up to 12 fit one sector, the rest
    # straddle two -> 1.5 sectors on average.
    assert Access(GATHER, 8, 20).moved_bytes(32) == pytest.approx(8 * 1.5 * 32)


def test_sparse_rows_extremes_by_hand():
    # fp16 rows of 128 elements (256 B), 32-byte sectors hold 16 elements.
    one = Access(SPARSE_ROWS, 10, 2, picks=1, row_bytes=256)
    assert one.moved_bytes(32) == pytest.approx(10 * 32)
    full = Access(SPARSE_ROWS, 10, 2, picks=128, row_bytes=256)
    assert full.moved_bytes(32) == 10 * 256


def test_sparse_rows_expected_sectors_by_hand():
    # 2 picks of 128 elements: P(a given 16-element sector is missed) = C(112,2)/C(128,2)
    miss = (112 * 111) / (128 * 127)
    a = Access(SPARSE_ROWS, 1, 2, picks=2, row_bytes=256)
    assert a.moved_bytes(32) == pytest.approx(8 * (1 - miss) * 32)


def test_k_stored_once_saves_almost_nothing_in_step1():
    h100 = load_device("h100")
    once = Workload(model=LLAMA2, seq=16384, r=32, k=128, store_k="once")
    twice = Workload(model=LLAMA2, seq=16384, r=32, k=128, store_k="twice")
    impl = get_implementation("ideal")
    k_bytes = 16384 * 128 * 2 * 32 * 32  # all of K, one layer-set
    step1_once = impl.attention_phases(once, "sparq")[0].moved_bytes(h100.granularity)
    step1_twice = impl.attention_phases(twice, "sparq")[0].moved_bytes(h100.granularity)
    assert step1_once / k_bytes > 0.98
    assert step1_twice / k_bytes == pytest.approx(32 / 128, rel=0.01)


def test_prediction_bytes_and_speedup_are_consistent():
    h100 = load_device("h100")
    w = Workload.build(LLAMA2, 32768)
    p = predict(w, h100)
    assert p.dense.attention.ideal_bytes == ideal_attention_bytes(w, "dense")
    assert p.sparq.attention.bytes >= p.sparq.attention.ideal_bytes
    assert p.speedup["attention"] == pytest.approx(p.dense.attention.time_s / p.sparq.attention.time_s)
    assert p.dense.step.time_s > p.dense.attention.time_s
    # Weights add the same bytes to both methods.
    weights = LLAMA2.params * 2
    assert p.dense.step.ideal_bytes == pytest.approx(p.dense.attention.ideal_bytes + weights)


def test_roofline_time_is_bytes_over_sustained_bandwidth_plus_launches():
    h100 = load_device("h100")
    w = Workload.build(LLAMA2, 32768)
    p = predict(w, h100)
    dense_scores = p.dense.attention.phases[0]
    expected = 32768 * 128 * 2 * 32 * 32 / (3.35e12 * 0.90) + 32 * 4e-6 + 0  # K of all heads + q
    q_bytes = 32 * 32 * 128 * 2
    assert dense_scores.time_s == pytest.approx(expected + q_bytes / (3.35e12 * 0.9))
    assert dense_scores.bound == "memory"


def test_batch_makes_weights_compute_bound_eventually():
    h100 = load_device("h100")
    w = Workload.build(LLAMA2, 128, batch=4096)
    p = predict(w, h100)
    weights = [ph for ph in p.dense.step.phases if ph.name == "weights"][0]
    assert weights.compute_s == pytest.approx(2 * LLAMA2.params * 4096 / 989.4e12)
    assert weights.bound == "compute"
    assert math.isfinite(p.speedup["step"])
