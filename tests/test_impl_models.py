"""End-to-end implementation models: gpt-fast (GPU) and llama.cpp (CPU), and --impl/--threads."""

import pytest

from sparq_sim.hardware import load_device
from sparq_sim.implementations import all_implementations, get_implementation
from sparq_sim.models import get_preset
from sparq_sim.predict import predict
from sparq_sim.workload import Workload


def test_registry_and_help(cli):
    assert {"ideal", "gpt-fast", "llama.cpp"} <= set(all_implementations())
    code, out, _ = cli("predict", "--help")
    assert code == 0 and "gpt-fast" in out and "llama.cpp" in out and "--threads" in out


def test_cli_impl_and_threads(cli):
    code, out, err = cli("predict", "--hw", "epyc-7763", "--seq", "32k", "--impl", "llama.cpp",
                         "--threads", "8", "--weight-dtype", "int8")
    assert code == 0, err
    assert "implementation llama.cpp" in out
    for argv, needle in ((["--hw", "h100", "--impl", "ideal", "--threads", "4"], "--threads does not apply"),
                         (["--hw", "h100", "--impl", "llama.cpp"], "models a CPU"),
                         (["--hw", "epyc-7763", "--impl", "gpt-fast"], "models a GPU"),
                         (["--hw", "epyc-7763", "--impl", "llama.cpp", "--threads", "0"], "bad --threads")):
        code, _, err = cli("predict", "--seq", "4k", *argv)
        assert code == 2 and needle in err, err


def _step_speedup(impl, hw, seq, **kw):
    w = Workload.build(get_preset(kw.pop("model", "llama-2-7b")), seq, **kw)
    return predict(w, load_device(hw), impl)


def test_threads_share_bandwidth():
    cpu = get_implementation("llama.cpp")
    times = {t: _step_speedup(cpu.configure(threads=t), "epyc-7763", 32768).dense.step.time_s
             for t in (1, 2, 4, 64)}
    assert times[1] > times[2] > times[4] > times[64]
    # Past saturation (sustained / per-thread ceiling, about 6 threads here) more threads do not help.
    t8 = _step_speedup(cpu.configure(threads=8), "epyc-7763", 32768).dense.step.time_s
    assert t8 == pytest.approx(times[64], rel=0.02)


def test_llama_cpp_sparq_op_selects_between_its_memory_passes():
    """By hand, EPYC 7763 (159.744 GB/s sustained, 2.45 GHz, 115 ns DRAM latency, 5 us per op),
    S = 32k, r = 16, k = 2048, fp16: a head moves 16 x 32768 x 2 (K_t runs) + 2 x 2048 x 256 (K and
    V rows) + 2 x 256 (q, out) = 2,097,664 bytes. Each layer's op gives its 32 heads one thread
    each, streaming at 159.744 / 32 GB/s; the 4096 gathered rows take at least 4096 x 115 ns /
    GATHER_ROWS_IN_FLIGHT instead of their 1,048,576 bytes' share; the selection of 32768
    positions runs while DRAM idles, and the op waits for the slowest of its threads' (the
    slowest of 32 heads makes 3.669 comparisons per position), then a softmax of 2048 scores.
    More threads than a layer has heads do nothing; 16 threads take two rounds at twice the
    bandwidth each, the slowest of 16 threads making 2 x 2.234 + sqrt(2) x (3.428 - 2.234)."""
    from sparq_sim.implementations.llama_cpp import OP_FIGURES, SOFTMAX_S_PER_ELEMENT
    w = Workload.build(get_preset("llama-2-7b"), 32768, r=16, k=2048, kv_dtype="float16")
    device = load_device("epyc-7763")
    zen3 = OP_FIGURES["zen3"]        # the EPYC 7763's core
    GATHER_ROWS_IN_FLIGHT = zen3.gather_rows_in_flight
    SELECT_FIXED_CYCLES_PER_POSITION, SELECT_CYCLES_PER_COMPARISON = (zen3.select_fixed_cycles_per_position,
                                                                      zen3.select_cycles_per_comparison)
    head, rows_bytes, rows, bw = 2_097_664, 1_048_576, 4096, 159.744e9
    latency = rows * 115e-9 / GATHER_ROWS_IN_FLIGHT

    def select(rounds, comparisons):     # per head, averaged over the slowest thread's rounds
        cycles = 32768 * (rounds * SELECT_FIXED_CYCLES_PER_POSITION + comparisons * SELECT_CYCLES_PER_COMPARISON)
        return cycles / 2.45e9 / rounds + 2048 * SOFTMAX_S_PER_ELEMENT

    def per_head(threads, rounds, comparisons):
        share = bw / threads
        return head / share + max(0.0, latency - rows_bytes / share) + select(rounds, comparisons)

    def op_time(threads):   # at the idle latency, whatever the load (the loaded factor: below)
        idle = get_implementation("llama.cpp").with_row_latency(lambda device, rows, size: 1.0)
        p = predict(w, device, idle.configure(threads=threads))
        (op,) = [ph for ph in p.sparq.attention.phases if ph.name == "sparq_op"]
        assert op.moved_bytes == 1024 * head
        return op.time_s

    assert op_time(32) == pytest.approx(32 * (per_head(32, 1, 3.669) + 5e-6), rel=1e-6)
    assert op_time(64) == pytest.approx(op_time(32), rel=1e-9)
    two_rounds = 2 * 2.234 + 2 ** 0.5 * (3.428 - 2.234)
    assert op_time(16) == pytest.approx(32 * (2 * per_head(16, 2, two_rounds) + 5e-6), rel=1e-6)
    # 32 threads' gathers are bound by their bandwidth share, 16 threads' by latency: both branches
    assert rows_bytes / (bw / 32) > latency > rows_bytes / (bw / 16)


def test_llama_cpp_gathers_wait_longer_when_all_threads_gather():
    """The gathers' latency bound is scaled by the row latency with every busy thread's
    GATHER_ROWS_IN_FLIGHT rows outstanding over that with one thread's; predict hands the model
    the DRAM simulator's, which gives a longer row under more load on the EPYC's channels."""
    from types import SimpleNamespace

    from sparq_sim.implementations.llama_cpp import OP_FIGURES
    from sparq_sim.simulator.latency import row_latency
    device = load_device("epyc-7763")
    GATHER_ROWS_IN_FLIGHT = OP_FIGURES["zen3"].gather_rows_in_flight
    stub = get_implementation("llama.cpp").with_row_latency(lambda d, rows, size: 100e-9 * (1 + rows / 100))
    one, many = round(GATHER_ROWS_IN_FLIGHT), round(32 * GATHER_ROWS_IN_FLIGHT)
    assert stub._load_factor(device, 32, 256) == pytest.approx((1 + many / 100) / (1 + one / 100))
    assert stub._load_factor(device, 1, 256) == 1.0
    assert get_implementation("llama.cpp").with_row_latency(lambda *a: None)._load_factor(device, 32, 256) == 1.0
    assert stub.configure(threads=8).row_latency is stub.row_latency
    w = Workload.build(get_preset("llama-2-7b"), 32768, r=16, k=2048, kv_dtype="float16")
    assert predict(w, device, "llama.cpp").model.row_latency is row_latency
    assert row_latency(device, many, 256) > row_latency(device, one, 256) > device.dram_latency_s.value
    assert row_latency(SimpleNamespace(dram=None), 4, 256) is None


def test_slowest_thread_selection_comparisons():
    """The measured slowest-of-n table, interpolated in log2 n: one thread is the mean; 24 threads
    lie 0.585 of the way from 16 (3.428) to 32 (3.669); beyond 64 the last step continues; a thread
    with m selections adds m means and sqrt(m) single excesses."""
    from sparq_sim.implementations.llama_cpp import selection_comparisons
    assert selection_comparisons(1, 1) == pytest.approx(2.234)
    assert selection_comparisons(32, 1) == pytest.approx(3.669)
    assert selection_comparisons(24, 1) == pytest.approx(3.428 + (3.669 - 3.428) * 0.5849625, rel=1e-6)
    assert selection_comparisons(128, 1) == pytest.approx(3.902 + (3.902 - 3.669), rel=1e-9)
    assert selection_comparisons(8, 4) == pytest.approx(4 * 2.234 + 2 * (3.167 - 2.234), rel=1e-9)
    assert selection_comparisons(1, 3) == pytest.approx(3 * 2.234)


def test_q8_weights_and_gqa():
    cpu = get_implementation("llama.cpp")
    fp16 = _step_speedup(cpu, "epyc-7763", 4096).dense.step.time_s
    q8 = _step_speedup(cpu, "epyc-7763", 4096, weight_dtype="int8").dense.step.time_s
    assert q8 < 0.7 * fp16
    gqa = _step_speedup("gpt-fast", "h100-pcie", 32768, model="llama-3-8b")
    mha = _step_speedup("gpt-fast", "h100-pcie", 32768, model="llama-2-7b")
    assert gqa.dense.attention.bytes < mha.dense.attention.bytes / 3


def test_gpu_overheads_hurt_short_sequences():
    short = _step_speedup("gpt-fast", "h100-pcie", 2048)
    assert short.speedup["step"] < 1.05           # fixed kernel costs eat the saving at short S
    ideal = _step_speedup("ideal", "h100-pcie", 45000)
    real = _step_speedup("gpt-fast", "h100-pcie", 45000)
    assert real.speedup["step"] < ideal.speedup["step"]


def test_gpt_fast_is_composed_of_the_measured_kernels():
    """gpt-fast's dense step is SDPA's math backend (the measured attn-math kernel: the scaled K^T
    written to a new tensor and read back), its SparQ the sparq-attn-compiled kernel, over a cache
    of find_multiple(S + 1, 8) positions, replayed as one CUDA graph: calibrated timing, no host
    dispatch per kernel (each kernel costs the device's graph_kernel_s)."""
    from sparq_sim.implementations.gpt_fast import cache_positions
    assert cache_positions(45000) == 45008 and cache_positions(4095) == 4096
    p = _step_speedup("gpt-fast", "h100-pcie", 45000, kv_dtype="bfloat16", weight_dtype="bfloat16")
    assert p.timing == "calibrated"
    phases = [ph.name for ph in p.sparq.attention.phases]
    assert phases[:3] == ["top_r", "gather_r", "scores_r"] and "top_k" in phases
    # the math backend reads the whole cache of 45,008 positions of K, writes K^T * sqrt(scale)
    # and the scores matmul reads that copy: three passes over K's bytes, one over V's
    k_bytes = 32 * 32 * 45008 * 128 * 2
    copy, scores = p.dense.attention.phases[:2]
    assert copy.name == "copy_K" and copy.requested_bytes == 2 * k_bytes
    assert scores.name == "scores" and k_bytes <= scores.requested_bytes < 1.01 * k_bytes
    assert p.dense.attention.bytes == pytest.approx(4 * k_bytes, rel=0.02)
    assert p.error is not None and p.error["median_abs_pct"] > 0


def _published(implementation):
    from sparq_sim.validation.end_to_end import read_setups
    return next(s for s in read_setups() if s.implementation == implementation)


def test_published_gpu_end_to_end():
    """SparQ paper: up to ~1.9x end to end at 45k tokens, gpt-fast, Llama 2 7B, one H100 PCIe
    (validation/data/end-to-end.csv)."""
    s = _published("gpt-fast")
    p = predict(s.workload(), load_device(s.hardware), s.composed())
    assert p.speedup["step"] == pytest.approx(s.published_speedup, rel=0.10)


def _cpu_setups():
    from sparq_sim.validation.end_to_end import read_setups
    return [s for s in read_setups() if s.implementation == "llama.cpp"]


@pytest.mark.xfail(strict=True, reason="known gap (docs/planning.md): the llama.cpp model predicts "
                   "~3.1x at 128k on a Zen 3 EPYC 7763 and ~2.0x on a Zen 4 EPYC 9654 with 8-bit weights "
                   "against the published ~2.5x of an unstated EPYC")
@pytest.mark.parametrize("s", _cpu_setups(), ids=lambda s: s.hardware)
def test_published_cpu_end_to_end(s):
    """SparQ paper: ~2.5x end to end at 128k tokens, llama.cpp, Llama 2 7B, CPU (AMD EPYC), 8-bit
    weights (validation/data/end-to-end.csv: a Zen 3 and a Zen 4 candidate)."""
    p = predict(s.workload(), load_device(s.hardware), s.composed())
    assert p.speedup["step"] == pytest.approx(s.published_speedup, rel=0.15)


def test_llama_cpp_dense_converts_the_probabilities_on_one_thread():
    """ggml's V.p first converts the fp32 probabilities to V's f16 on one thread (a decode step has
    one row per head to split). By hand, EPYC 7763, S = 32k, 32 threads: each layer's 32 heads x
    32768 x (4 read + 2 written) = 6,291,456 bytes at one thread's ceiling, 48 misses x 64 bytes /
    115 ns = 26.71 GB/s, plus the op's barrier (5 us); V.p then reads 2-byte probabilities."""
    w = Workload.build(get_preset("llama-2-7b"), 32768, kv_dtype="float16")
    p = predict(w, load_device("epyc-7763"), get_implementation("llama.cpp").configure(threads=32))
    phases = {ph.name: ph for ph in p.dense.attention.phases}
    ceiling = 48 * 64 / 115e-9
    assert phases["probs_to_f16"].moved_bytes == 32 * 6_291_456
    assert phases["probs_to_f16"].time_s == pytest.approx(32 * (6_291_456 / ceiling + 5e-6), rel=1e-6)
    v_bytes = 32 * 32 * 32768 * 128 * 2
    assert phases["values"].moved_bytes == v_bytes + 32 * 32 * 32768 * 2 + 32 * 32 * 128 * 2
