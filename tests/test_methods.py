"""Every method's bytes and memory against hand-computed values (GQA included), granularity
rounding of their access patterns, and the --compression rule of each."""

import pytest

from sparq_sim.errors import UserError
from sparq_sim.methods import NAMES, MethodName, get_method, parse_set_options, resolve_settings
from sparq_sim.models import get_preset
from sparq_sim.traffic import ideal_attention_bytes
from sparq_sim.workload import Workload

LLAMA3 = get_preset("llama-3-8b")    # 32 layers, 32 query heads, 8 KV heads (GQA), d_h 128
LLAMA2 = get_preset("llama-2-7b")    # 32 layers, 32 heads, d_h 128
S = 4096
W3 = Workload(model=LLAMA3, seq=S, batch=1)
# Whole step = per (batch element, layer) elements x 32 layers x 2 bytes (fp16) = x 64.
QO = 32 * 2 * 128                    # q read and output written, once per query head: 8,192


def bytes_of(name, settings, w=W3):
    m = get_method(name)
    return m.ideal_bytes(w, m.check(w.model, w.seq, settings))


def test_every_name_is_registered_and_enumerated():
    assert NAMES == ("dense", "sparq", "flexgen", "h2o", "streamingllm", "quest", "double-sparsity", "loki")
    for n in NAMES:
        assert get_method(n).name == n == MethodName(n).value
    with pytest.raises(UserError, match="unknown method"):
        get_method("bigbird")


def test_dense_gqa_by_hand():
    # 8 KV heads * 2*4096*128 + 8,192 = 8,396,800 elements per layer
    assert bytes_of("dense", {}) == 8_396_800 * 64 == 537_395_200


def test_flexgen_gqa_by_hand():
    # 8 * (4096*128 + 256*128) + 8,192 = 4,464,640
    assert bytes_of("flexgen", {"k": 256}) == 4_464_640 * 64


def test_h2o_gqa_by_hand():
    # 8 * (2*256*128 + 2*4096) + 8,192 = 598,016 (kept rows, plus score accumulators read and written)
    assert bytes_of("h2o", {"heavy": 128, "recent": 128}) == 598_016 * 64


def test_streamingllm_gqa_by_hand():
    # 8 * 2*(4 + 252)*128 + 8,192 = 532,480
    assert bytes_of("streamingllm", {"n_sink": 4, "window": 252}) == 532_480 * 64


def test_quest_gqa_by_hand():
    # 256 pages: 8 * (2*128*256 metadata + 2*256*128 chosen K,V) + 8,192 = 1,056,768
    assert bytes_of("quest", {"page": 16, "budget": 256}) == 1_056_768 * 64


def test_double_sparsity_gqa_by_hand():
    # fp16 labels: 8 * (4096*16 + 2*128*128) + 8,192 = 794,624 elements
    assert bytes_of("double-sparsity", {"r": 16, "k": 128}) == 794_624 * 64
    # int4 labels: per KV head 4096*16/2 = 32,768 B + 16 channels * 64 blocks * 2 B scales = 34,816 B,
    # plus K and V rows 2*128*128*2 = 65,536 B; 8 KV heads + 16,384 B q/out = 819,200 B per layer
    assert bytes_of("double-sparsity", {"r": 16, "k": 128, "label_format": "int4"}) == 819_200 * 32


def test_loki_gqa_by_hand():
    # 8 * (4096*32 + 2*256*128) + 8,192 = 1,581,056 elements per layer, plus the projections
    # 32 layers * 8 KV heads * 128*128 * 2 B = 8,388,608 B once per step
    assert bytes_of("loki", {"r": 32, "k": 256}) == 1_581_056 * 64 + 8_388_608
    w4 = Workload(model=LLAMA3, seq=S, batch=4)
    assert bytes_of("loki", {"r": 32, "k": 256}, w4) == 4 * 1_581_056 * 64 + 8_388_608


def test_sparq_matches_the_existing_formula_and_kt_formats_by_hand():
    # 8 * (4096*16 + 2*256*128) + 8,192 + 8*2*128 (value mean) = 1,058,816
    assert bytes_of("sparq", {"r": 16, "k": 256}) == 1_058_816 * 64
    assert bytes_of("sparq", {"r": 16, "k": 256}) == ideal_attention_bytes(Workload(model=LLAMA3, seq=S, r=16, k=256), "sparq")
    # int8 K_t, 64-position blocks: step 1 reads 16 * (4096 + 64*2) = 67,584 B per KV head instead of
    # 16*4096*2 = 131,072 B: 63,488 B less x 8 KV heads x 32 layers
    assert bytes_of("sparq", {"r": 16, "k": 256, "kt_format": "int8"}) == 1_058_816 * 64 - 63_488 * 256
    # int4: 16 * (2048 + 128) = 34,816 B per KV head: 96,256 B less
    assert bytes_of("sparq", {"r": 16, "k": 256, "kt_format": "int4"}) == 1_058_816 * 64 - 96_256 * 256
    with pytest.raises(UserError, match="store_k = twice"):
        get_method("sparq").check(LLAMA3, S, {"store_k": "once", "kt_format": "int8"})


@pytest.mark.parametrize("name,settings,expected", [
    ("dense", {}, 536_870_912),                                   # 2 * 32 * 8 * 128 * 4096 * 2
    ("sparq", {}, 805_306_368 + 131_072),                         # K twice: 3/2 of dense, + fp32 value mean
    ("sparq", {"store_k": "once"}, 536_870_912 + 131_072),
    ("sparq", {"kt_format": "int8"}, 536_870_912 + 32 * 8 * 128 * (4096 + 128) + 131_072),
    ("sparq", {"kt_format": "int4"}, 536_870_912 + 32 * 8 * 128 * (2048 + 128) + 131_072),
    ("sparq", {"reallocate": "false"}, 805_306_368),
    ("flexgen", {"k": 256}, 536_870_912),
    ("h2o", {"heavy": 128, "recent": 128}, 256 * (2 * 256 * 128 + 4096) * 2),   # 35,651,584
    ("streamingllm", {"n_sink": 4, "window": 252}, 2 * 256 * 128 * 256 * 2),    # 33,554,432
    ("quest", {"page": 16, "budget": 256}, 536_870_912 + 256 * 2 * 128 * 256 * 2),
    ("double-sparsity", {"r": 16, "k": 128}, 536_870_912 + 256 * 4096 * 16 * 2),
    ("loki", {"r": 32, "k": 256}, 536_870_912),
])
def test_kv_memory_per_sequence_gqa_by_hand(name, settings, expected):
    m = get_method(name)
    assert m.kv_bytes_per_sequence(LLAMA3, S, "float16", m.check(LLAMA3, S, settings)) == expected


def test_narrow_kt_cuts_sparqs_extra_memory():
    m = get_method("sparq")
    dense = get_method("dense").kv_bytes_per_sequence(LLAMA2, 32768, "float16", {})
    extra = {fmt: m.kv_bytes_per_sequence(LLAMA2, 32768, "float16", m.check(LLAMA2, 32768, {"kt_format": fmt,
                                                                                             "reallocate": False}))
             / dense - 1 for fmt in ("kv", "int8", "int4")}
    # per token and KV head: K_t 128*2 B = +50%; int8 128 B + 2 scale bytes per 64 positions = +25.8%; int4 +13.3%
    assert extra["kv"] == 0.5
    assert extra["int8"] == pytest.approx((128 + 128 * 2 / 64) / 512)
    assert extra["int4"] == pytest.approx((64 + 128 * 2 / 64) / 512)


def test_loki_projections_are_per_model():
    m = get_method("loki")
    assert m.fixed_bytes(LLAMA3, "float16", m.check(LLAMA3, S, {})) == 32 * 8 * 128 * 128 * 2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("model", [LLAMA2, LLAMA3])
def test_phases_request_exactly_the_ideal_bytes(name, model):
    w = Workload(model=model, seq=8192, batch=2)
    m = get_method(name)
    for c in (None, 1 / 2, 3 / 4 if name == "flexgen" else 1 / 4):
        s = resolve_settings(m, model, 8192, c, None)
        requested = sum(p.requested_bytes() for p in m.attention_phases(w, s) if p.in_formula)
        assert requested == m.ideal_bytes(w, s)


def test_granularity_rounding_of_loki_prefix_and_quest_pages():
    w = Workload(model=LLAMA2, seq=S, batch=1)
    kv_instances = 32 * 32
    loki = get_method("loki")
    # r = 8 fp16: 16 bytes per row at a 256-byte stride: one whole 32-byte sector each (2x), one 64-byte line (4x)
    prefix = [a for p in loki.attention_phases(w, loki.check(LLAMA2, S, {"r": 8, "k": 64}))
              for a in p.accesses if a.what == "K prefix"][0]
    assert prefix.requested_bytes() == kv_instances * S * 16
    assert prefix.moved_bytes(32) == kv_instances * S * 32
    assert prefix.moved_bytes(64) == kv_instances * S * 64
    # r = 16: 32 bytes fill a sector exactly
    prefix16 = [a for p in loki.attention_phases(w, loki.check(LLAMA2, S, {"r": 16, "k": 64}))
                for a in p.accesses if a.what == "K prefix"][0]
    assert prefix16.moved_bytes(32) == prefix16.requested_bytes()
    quest = get_method("quest")
    phases = quest.attention_phases(w, quest.check(LLAMA2, S, {"page": 16, "budget": 512}))
    assert sum(p.moved_bytes(32) for p in phases) == sum(p.requested_bytes() for p in phases)


def test_sparq_store_once_moves_nearly_whole_rows():
    w = Workload(model=LLAMA2, seq=S, batch=1)
    m = get_method("sparq")
    once = m.attention_phases(w, m.check(LLAMA2, S, {"r": 16, "k": 256, "store_k": "once"}))
    twice = m.attention_phases(w, m.check(LLAMA2, S, {"r": 16, "k": 256}))
    assert once[0].requested_bytes() == twice[0].requested_bytes()
    assert once[0].moved_bytes(32) > 5 * twice[0].moved_bytes(32)


@pytest.mark.parametrize("name", ["sparq", "h2o", "streamingllm", "quest", "double-sparsity", "loki"])
@pytest.mark.parametrize("c", [1 / 4, 1 / 8])
def test_compression_sets_knobs_to_move_that_fraction(name, c):
    w = Workload(model=LLAMA3, seq=32768, batch=1)
    m = get_method(name)
    s = resolve_settings(m, LLAMA3, 32768, c, None)
    dense = get_method("dense").ideal_bytes(w, {})
    assert m.ideal_bytes(w, s) / dense == pytest.approx(c, rel=0.03)


def test_flexgen_cannot_go_below_half():
    m = get_method("flexgen")
    with pytest.raises(UserError, match="below 1/2"):
        m.settings_for_compression(LLAMA2, S, 1 / 8)
    assert m.settings_for_compression(LLAMA2, S, 3 / 4) == {"k": 2048}


def test_quest_and_h2o_floors():
    with pytest.raises(UserError, match="1/P"):
        get_method("quest").settings_for_compression(LLAMA2, S, 1 / 16)
    with pytest.raises(UserError, match="1/d_h"):
        get_method("h2o").settings_for_compression(LLAMA2, S, 1 / 128)


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="unknown setting"):
        get_method("quest").check(LLAMA2, S, {"pages": 3})
    with pytest.raises(UserError, match="whole number of pages"):
        get_method("quest").check(LLAMA2, S, {"page": 16, "budget": 100})
    with pytest.raises(UserError, match="r = 200"):
        get_method("loki").check(LLAMA2, S, {"r": 200})
    with pytest.raises(UserError, match="METHOD.KNOB=VALUE"):
        parse_set_options(["page=3"])
    with pytest.raises(UserError, match="no knob"):
        parse_set_options(["quest.r=3"])
    assert parse_set_options(["quest.page=32", "sparq.kt_format=int8"]) == {
        "quest": {"page": "32"}, "sparq": {"kt_format": "int8"}}


@pytest.mark.parametrize("timing", ["roofline", "calibrated"])
def test_every_timer_times_every_methods_phases(timing):
    from sparq_sim.hardware import load_device
    from sparq_sim.methods.evaluate import evaluate, workload_for
    from sparq_sim.timing import get_timer

    device = load_device("a10g")
    timer = get_timer(timing, device)
    w = workload_for(LLAMA2, 4096, 2)
    dense = evaluate("dense", {}, w, device, timer).attention.time_s
    for name in NAMES[1:]:
        m = get_method(name)
        s = resolve_settings(m, LLAMA2, 4096, 1 / 2 if name == "flexgen" else 1 / 8, None)
        t = evaluate(name, s, w, device, timer).attention.time_s
        assert 0 < t < dense, (name, t, dense)
