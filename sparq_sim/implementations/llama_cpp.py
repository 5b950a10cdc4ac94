"""llama.cpp style decoding on a CPU: a C++ graph of ops, each a parallel region over the threads.

What is modelled (every constant below is an assumption, basis "assumed", unless said otherwise):

* Threads share the socket's bandwidth, and one thread cannot pull more than a per-thread
  ceiling: Little's law on the device file's ``[dram]`` figures,
  outstanding misses per core x line size / idle latency (26.7 GB/s for an EPYC 7763 core); a
  thread count below sustained / ceiling cannot saturate DRAM. Devices without those figures
  use ``PER_THREAD_BPS_FALLBACK``.
* ``--threads N`` (default: the device's cores). Matrix products split their rows over all
  threads; ops that split by head (softmax rows, SparQ's attention op) run each layer's heads in
  rounds of ``threads``, so a head count that is not a multiple of the threads, or below it,
  leaves some idle.
* Every op is a parallel region ended by a barrier: the device's ``launch_s`` each. The dense
  layer is ``DENSE_OPS_PER_LAYER`` ops (norms, Q/K/V/O and the three MLP projections, RoPE, cache
  copies, K.q, softmax, V.p, adds); SparQ replaces K.q, softmax and V.p with one SparQ op and
  adds one copy into the component-major K.
* Weights: int8 means llama.cpp's Q8_0 (blocks of 32 int8 weights with one fp16 scale: 34 bytes
  per 32 weights); other dtypes are stored as they are.
* Dense attention is ggml's: K.q writes fp32 scores, the softmax reads them (``SOFTMAX_READS``
  times) and writes probabilities, V.p reads them (V is stored transposed, so it still streams).
  ggml's matrix product first converts its second operand to the first's dot-product type (f16
  for an f16 V) in a pass that splits only over that operand's rows per head: a decode step has
  one such row, so one thread converts every head's S probabilities (fp32 read, f16 written,
  V.p then reads the f16 copy) while the others wait at the op's barrier. ggml.c, mul_mat: in
  early-2024 versions the conversion is the op's INIT task, run by thread 0 alone; later ones
  split it as ``for (i11 = ith; i11 < ne11; i11 += nth)``, ne11 being the tokens (one).
* SparQ op ("threads across heads", no reallocation: the C++ implementation drops step 3, so
  there is no value-mean traffic whatever the workload says, and it ranks raw scores, so there is
  no softmax over S): one thread takes one KV head (its query-head group) at a time and runs, in
  order, top-r, the r runs of the component-major K, the top-k selection, then the k rows of K
  and of V (V kept position-major), gathered one by one. Figures of that code are *measured* by
  ``python -m sparq_sim.kernels.bench_llamacpp`` (the op in C++, recorded in
  validation/results/cpu-llamacpp.json and cpu-llamacpp-zen4.json): the selection (S (score, index) pairs in fresh scratch,
  ``std::nth_element``) costs fixed cycles per position plus cycles per comparison, timed at the
  device's clock (both measured per core microarchitecture, ``OP_FIGURES``), and its
  comparisons vary from head to head: the op's barrier waits for its slowest thread, whose
  comparisons per position are the measured expected largest of the busy threads'
  (``selection_comparisons``); and the gathered rows keep only the core's measured rows-in-flight DRAM
  accesses going, so 2k rows take at least 2k x the device's DRAM latency / that, times how
  much longer a row takes with every busy thread gathering at once than with one (the device's
  DRAM simulator, handed in by ``predict``: ``with_row_latency``). On the
  measuring machines the op took what its parts add up to (step 1 + selection + gathers, +6% to
  +18% on Zen 3, +5% to +22% on Zen 4): the parts run one after another, and every thread starts its head together after the
  op's barrier, so the threads select while DRAM idles and the selection adds to the op's
  memory time.
* The bandwidth shortfall (threads, per-thread ceiling, idle threads in the last round) and the
  serial work are carried in each phase's ``fixed_s``, so the roofline timer's total is the
  phase's memory time plus (SparQ's selection) or at least (the dense softmax, which streams its
  row while it computes) its serial work, plus barriers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sparq_sim.errors import UserError
from sparq_sim.implementations import base
from sparq_sim.traffic import STREAM, Access, Phase
from sparq_sim.workload import Workload

PER_THREAD_BPS_FALLBACK = 20e9    # assumed: one core's streaming read bandwidth where the file lacks [dram]
Q8_0_BYTES_PER_WEIGHT = 34 / 32   # llama.cpp Q8_0 block layout (ggml-common.h: block_q8_0)
DENSE_OPS_PER_LAYER = 22          # assumed: ops of llama.cpp's Llama layer graph that do work
SOFTMAX_READS = 2                 # assumed: ggml's softmax reads its row for the max, then to exponentiate
SCORE_BYTES = 4                   # fp32 scores and probabilities
HALF_BYTES = 2                    # f16: V's dot-product type, the probabilities are converted to it
SOFTMAX_S_PER_ELEMENT = 1.5e-9    # assumed: vectorised exp, max and sum, about 4 cycles per element
# measured by bench_llamacpp, one thread, g++ -O3, cycles at the guest's nominal (TSC) clock: one head's
# selection costs, per position of S, the scratch pairs' fixed cycles plus cycles per comparison of
# std::nth_element (a least-squares line over 2,400 calls on different heads' scores at S = 16k-128k,
# k = S/12), and of the rows the op gathers one by one, how many are in flight (pointer-chase latency
# x rows / gather time, the median of S = 16k-128k, each the median of 5 rounds). Both hang on the
# core (its branch predictor and out-of-order window), so they are kept per core microarchitecture
# (the hardware file's compute.core); a core not measured takes DEFAULT_CORE's.


@dataclass(frozen=True)
class OpFigures:
    """The measured figures of the fork's SparQ op on one core microarchitecture."""
    select_fixed_cycles_per_position: float
    select_cycles_per_comparison: float
    gather_rows_in_flight: float
    source: str


OP_FIGURES = {
    # Zen 3 AMD EPYC guest at 2.45 GHz (validation/results/cpu-llamacpp.json): 25.3 cycles per position
    # on average; rows in flight 2.43, 2.30, 2.40, 2.38 at 16k-128k
    "zen3": OpFigures(6.11, 8.58, 2.39, "measured: bench_llamacpp on a Zen 3 AMD EPYC guest, 2026-12-02 "
                                         "(validation/results/cpu-llamacpp.json)"),
    # Zen 4 AMD EPYC guest (family 25, model 17: Genoa) at 2.60 GHz (validation/results/cpu-llamacpp-zen4.json):
    # 22.9 cycles per position on average; rows in flight 2.69, 3.17, 2.50, 2.91 at 16k-128k
    "zen4": OpFigures(5.72, 7.77, 2.80, "measured: bench_llamacpp on a Zen 4 AMD EPYC guest, 2026-12-02 "
                                         "(validation/results/cpu-llamacpp-zen4.json)"),
    # Intel Xeon guest at 2.60 GHz whose model the hypervisor hides (cpuid family 6 model 167; AMX-BF16 and
    # AMX-INT8 without AMX-FP16: a Sapphire or Emerald Rapids part, Golden Cove class cores)
    # (validation/results/cpu-llamacpp-xeon.json): 17.6 cycles per position on average; rows in flight 2.29,
    # 2.16, 2.30, 2.45 at 16k-128k
    "sapphire-rapids": OpFigures(3.22, 6.33, 2.30, "measured: bench_llamacpp on an Intel Xeon guest with AMX "
                                                   "(Sapphire Rapids class), 2026-12-03 "
                                                   "(validation/results/cpu-llamacpp-xeon.json)"),
}
DEFAULT_CORE = "zen3"   # the first core measured; an earlier Intel Xeon guest, not recorded, kept 1.47 rows in flight
# The selection's comparisons per position vary from head to head (p10-p90 of the calls' cycles: 16.5-32.4
# on Zen 3, 14.6-29.6 on Zen 4): the expected largest of n heads' (a property of the algorithm on scores in
# random order, counted, not timed: the same on every core; the op's threads each take a head and its
# barrier waits for the slowest)
SELECT_COMPARISONS_SLOWEST_OF = {1: 2.234, 2: 2.566, 4: 2.880, 8: 3.167, 16: 3.428, 32: 3.669, 64: 3.902}


def op_figures(device) -> OpFigures:
    """The op's measured figures for `device`'s core (DEFAULT_CORE's where it has none measured)."""
    return OP_FIGURES.get(getattr(device, "core", None), OP_FIGURES[DEFAULT_CORE])


SCORE_OPS = 5


def selection_comparisons(threads: int, selections: int) -> float:
    """Comparisons per position that the slowest of `threads` threads makes, each running
    `selections` selections one after another: the measured expected largest of n heads
    (interpolated in log2 n, extended along its last step beyond the table) for one selection;
    for several, their mean times `selections` plus the single selection's excess times its
    square root (sums of independent draws)."""
    table = sorted(SELECT_COMPARISONS_SLOWEST_OF.items())
    mean = table[0][1]
    x = math.log2(max(1, threads))
    # the table's step that holds x (its last step beyond the table)
    (n0, v0), (n1, v1) = next((pair for pair in zip(table, table[1:]) if x <= math.log2(pair[1][0])),
                              (table[-2], table[-1]))
    slowest = v0 + (v1 - v0) * (x - math.log2(n0)) / (math.log2(n1) - math.log2(n0))
    m = max(1, selections)
    return m * mean + math.sqrt(m) * (slowest - mean)


def heads_per_thread(threads: int, items: int, ops: int) -> tuple[int, int]:
    """(busy threads, rounds) of one of `ops` ops that hands its share of `items` out one per
    thread: a layer's 32 heads keep at most 32 threads busy, and more heads than threads take
    rounds."""
    per_op = max(1, items // max(1, ops))
    return min(threads, per_op), math.ceil(per_op / threads)


def per_thread_bandwidth(device) -> float:
    """One thread's bandwidth ceiling: Little's law on the device's [dram] figures."""
    dram = device.dram if device is not None else None
    if dram is None or dram.outstanding_per_unit is None:
        return PER_THREAD_BPS_FALLBACK
    return dram.outstanding_per_unit.value * device.granularity / dram.idle_latency_s.value


class LlamaCpp:
    name = "llama.cpp"
    description = ("C++ on a CPU (llama.cpp style): threads across heads, per-thread bandwidth ceiling, "
                   "weights in --weight-dtype (default float16; int8 means Q8_0), K stored twice, no "
                   "reallocation; --threads N")

    def __init__(self, threads: int | None = None, row_latency: base.RowLatency | None = None):
        self.threads = threads
        self.row_latency = row_latency

    def configure(self, threads: int | None = None, **other) -> "LlamaCpp":
        if other:
            raise UserError(f"implementation llama.cpp does not take {', '.join(other)}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise UserError(f"threads must be an integer of at least 1, got {threads!r}")
        return LlamaCpp(threads, self.row_latency)

    def with_row_latency(self, latency: base.RowLatency) -> "LlamaCpp":
        return LlamaCpp(self.threads, latency)

    def _load_factor(self, device, threads: int, row_bytes: int) -> float:
        """How much longer a gathered row takes with `threads` threads gathering at once than with
        one (each keeps the core's measured rows in flight going): the device's loaded latency, where a
        row latency is given and knows the device, else 1."""
        if self.row_latency is None or threads <= 1:
            return 1.0
        in_flight = op_figures(device).gather_rows_in_flight
        one = self.row_latency(device, round(in_flight), row_bytes)
        many = self.row_latency(device, round(threads * in_flight), row_bytes)
        return max(1.0, many / one) if one and many else 1.0

    # -- how long work takes on the threads -------------------------------------------------------
    def _threads(self, device) -> int:
        if device is None:
            return self.threads or 1
        if device.kind != "cpu":
            raise UserError(f"implementation llama.cpp models a CPU; {device.name} is a {device.kind} "
                            "(use --impl gpt-fast for GPUs)")
        return self.threads or int(device.compute_units.value)

    def _shortfall(self, device, moved: float, flops: float, dtype: str, items: int | None,
                   serial_per_item: float = 0.0, serial_after_memory: bool = False, ops: int = 1,
                   gathered: tuple[float, float] = (0.0, 0.0)) -> float:
        """Extra seconds over the roofline's max(moved/sustained, flops/peak) for this phase.

        items=None: the work splits evenly over all threads. Otherwise the phase is `ops` ops (one
        per layer), each ended by a barrier, each of `items / ops` equal pieces handed out one per
        thread, in rounds: a layer's 32 heads keep at most 32 threads busy however many there are.
        A piece's serial work overlaps its memory traffic, or with ``serial_after_memory`` runs
        between its memory passes and adds to them. ``gathered`` = (bytes, rows) of the moved bytes
        that a piece gathers row by row: they take at least rows x DRAM latency / rows in flight.
        """
        if device is None:
            return 0.0
        threads = self._threads(device)
        sustained, ceiling = device.sustained_bandwidth, per_thread_bandwidth(device)
        roofline = max(moved / sustained, flops / device.peak(dtype))
        cores = int(device.compute_units.value)
        compute_rate = device.peak(dtype) * min(threads, cores) / cores
        if items is None or items <= 0:
            bandwidth = min(sustained, threads * ceiling)
            own = max(moved / bandwidth, flops / compute_rate)
        else:
            ops = max(1, ops)
            active, per_op_rounds = heads_per_thread(threads, items, ops)
            rounds = ops * per_op_rounds
            per_item_bw = min(ceiling, sustained / active)
            per_item_rate = compute_rate / active
            streaming = max(moved / items / per_item_bw, flops / items / per_item_rate)
            gathered_bytes, gathered_rows = gathered
            if gathered_rows:
                loaded = self._load_factor(device, active, round(gathered_bytes / gathered_rows))
                latency_bound = (gathered_rows / items * device.dram_latency_s.value
                                 / op_figures(device).gather_rows_in_flight * loaded)
                streaming += max(0.0, latency_bound - gathered_bytes / items / per_item_bw)
            own = rounds * (streaming + serial_per_item if serial_after_memory
                            else max(streaming, serial_per_item))
        return max(0.0, own - roofline)

    def _phase(self, device, name, accesses, flops=0.0, dtype="float32", items=None, serial=0.0,
               ops=0, part="attention", in_formula=True, serial_after_memory=False, gathered=()) -> Phase:
        accesses = tuple(accesses)
        granularity = device.granularity if device is not None else 64
        moved = sum(a.moved_bytes(granularity) for a in accesses)
        rows_gathered = (sum(a.moved_bytes(granularity) for a in gathered), sum(a.count for a in gathered))
        fixed = self._shortfall(device, moved, flops, dtype, items, serial, serial_after_memory, ops, rows_gathered)
        return Phase(name, accesses, flops=flops, flop_dtype=dtype, launches=ops, fixed_s=fixed,
                     part=part, in_formula=in_formula)

    # -- the model ------------------------------------------------------------------------------------
    def attention_phases(self, w: Workload, method: str, device=None) -> list[Phase]:
        self._threads(device)
        s = base.Shape.of(w)
        L, nq = w.model.layers, s.q_instances
        score_row = s.seq * SCORE_BYTES
        if method == "dense":
            scores = Access(STREAM, nq, score_row, what="scores")
            probs = Access(STREAM, nq, score_row, what="probs")
            return [
                self._phase(device, "scores", (base.read_q(s), base.stream_all(s, "K"),
                                               Access(STREAM, nq, score_row, write=True, what="scores")),
                            flops=2.0 * s.head_dim * s.seq * nq, ops=L),
                self._phase(device, "softmax", (scores.scaled(SOFTMAX_READS),
                                                Access(STREAM, nq, score_row, write=True, what="probs")),
                            flops=float(SCORE_OPS * s.seq * nq), items=nq,
                            serial=SOFTMAX_S_PER_ELEMENT * s.seq, ops=L),
                self._phase(device, "probs_to_f16", (probs, Access(STREAM, nq, s.seq * HALF_BYTES, write=True,
                                                                   what="probs (f16)")),
                            items=L, ops=L),
                self._phase(device, "values", (Access(STREAM, nq, s.seq * HALF_BYTES, what="probs (f16)"),
                                               base.stream_all(s, "V"), base.write_out(s)),
                            flops=2.0 * s.head_dim * s.seq * nq, ops=L),
                self._phase(device, "kv_append", base.cache_append(s, "once").accesses, ops=2 * L,
                            in_formula=False),
            ]
        if method != "sparq":
            raise ValueError(f"unknown method {method!r}")
        g = w.model.group
        rows = (base.gather_rows(s, "K"), base.gather_rows(s, "V"))
        accesses = (base.read_q(s), base.step1_keys(s, w.store_k), *rows, base.write_out(s))
        flops = (2.0 * s.r * s.seq + (4.0 * s.head_dim + SCORE_OPS) * s.k + SCORE_OPS * s.seq) * nq
        # timed at the device's clock; without a device the phases carry bytes only (no serial time).
        # A thread's heads of one op (g query heads each, in rounds of `threads`) select one after
        # another; the op ends when its slowest thread does.
        serial = 0.0
        if device is not None:
            active, rounds = heads_per_thread(self._threads(device), s.kv_instances, L)
            comparisons = selection_comparisons(active, rounds * g)
            op = op_figures(device)
            cycles = s.seq * (rounds * g * op.select_fixed_cycles_per_position
                              + comparisons * op.select_cycles_per_comparison)
            serial = cycles / device.clock_hz.value / rounds + g * s.k * SOFTMAX_S_PER_ELEMENT
        return [
            self._phase(device, "sparq_op", accesses, flops=flops, items=s.kv_instances, serial=serial,
                        ops=L, serial_after_memory=True, gathered=rows),
            self._phase(device, "kv_append", base.cache_append(s, w.store_k).accesses,
                        ops=(2 + (w.store_k == "twice")) * L, in_formula=False),
        ]

    def other_phases(self, w: Workload, device=None) -> list[Phase]:
        self._threads(device)
        layers = w.model.layers
        per_weight = Q8_0_BYTES_PER_WEIGHT if w.weight_dtype == "int8" else w.weight_bytes
        total = w.model.params * per_weight
        accesses = (Access(STREAM, layers, int(round(total / layers)), what="weights"),)
        flops = 2.0 * w.model.params * w.batch
        other_ops = (DENSE_OPS_PER_LAYER - 3) * layers
        return [self._phase(device, "weights", accesses, flops=flops, dtype=w.weight_dtype,
                            ops=other_ops, part="other")]


IMPLEMENTATION = LlamaCpp()
