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
* SparQ op ("threads across heads", no reallocation: the C++ implementation drops step 3, so
  there is no value-mean traffic whatever the workload says, and it ranks raw scores, so there is
  no softmax over S): one thread takes one KV head (its query-head group) at a time and runs, in
  order, top-r, the r runs of the component-major K, the top-k selection, then the k rows of K
  and of V (V kept position-major), gathered one by one. Two figures of that code are *measured*
  by ``python -m sparq_sim.kernels.bench_llamacpp`` (the op in C++, recorded in
  validation/results/cpu-llamacpp.json): the selection (S (score, index) pairs in fresh scratch,
  ``std::nth_element``) costs ``SELECT_CYCLES_PER_ELEMENT`` per position and query head, timed at
  the device's clock; and the gathered rows keep only ``GATHER_ROWS_IN_FLIGHT`` DRAM accesses
  going, so 2k rows take at least 2k x the device's DRAM latency / that. On the measuring machine
  the op took what its parts add up to (step 1 + selection + gathers, within -3% to +11%): the
  parts run one after another, and every thread starts its head together after the op's barrier,
  so the threads select while DRAM idles and the selection adds to the op's memory time.
* The bandwidth shortfall (threads, per-thread ceiling, idle threads in the last round) and the
  serial work are carried in each phase's ``fixed_s``, so the roofline timer's total is the
  phase's memory time plus (SparQ's selection) or at least (the dense softmax, which streams its
  row while it computes) its serial work, plus barriers.
"""

from __future__ import annotations

import math

from sparq_sim.errors import UserError
from sparq_sim.implementations import base
from sparq_sim.traffic import STREAM, Access, Phase
from sparq_sim.workload import Workload

PER_THREAD_BPS_FALLBACK = 20e9    # assumed: one core's streaming read bandwidth where the file lacks [dram]
Q8_0_BYTES_PER_WEIGHT = 34 / 32   # llama.cpp Q8_0 block layout (ggml-common.h: block_q8_0)
DENSE_OPS_PER_LAYER = 22          # assumed: ops of llama.cpp's Llama layer graph that do work
SOFTMAX_READS = 2                 # assumed: ggml's softmax reads its row for the max, then to exponentiate
SCORE_BYTES = 4                   # fp32 scores and probabilities
SOFTMAX_S_PER_ELEMENT = 1.5e-9    # assumed: vectorised exp, max and sum, about 4 cycles per element
# measured (validation/results/cpu-llamacpp.json, bench_llamacpp, one thread of an Intel Xeon @ 2.00 GHz,
# g++ -O3): the median over S >= 16k of the selection's cycles per position at the nominal clock (12.4,
# 13.3, 10.8 and 14.5 ns per position at 16k, 32k, 64k and 128k; the pairs outgrow L2 from 16k on; an
# earlier run on the same VM gave 32.7 cycles, so the figure carries about 25% of this VM's drift) ...
SELECT_CYCLES_PER_ELEMENT = 25.6
# ... and of the rows the op gathers one by one, how many are in flight: pointer-chase latency x rows /
# gather time, 1.49, 1.52, 1.40 and 1.45 at 16k-128k (each the median of 5 rounds)
GATHER_ROWS_IN_FLIGHT = 1.47
SCORE_OPS = 5


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

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def configure(self, threads: int | None = None, **other) -> "LlamaCpp":
        if other:
            raise UserError(f"implementation llama.cpp does not take {', '.join(other)}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise UserError(f"threads must be an integer of at least 1, got {threads!r}")
        return LlamaCpp(threads)

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
            per_op = max(1, items // ops)
            active = min(threads, per_op)
            rounds = ops * math.ceil(per_op / threads)
            per_item_bw = min(ceiling, sustained / active)
            per_item_rate = compute_rate / active
            streaming = max(moved / items / per_item_bw, flops / items / per_item_rate)
            gathered_bytes, gathered_rows = gathered
            if gathered_rows:
                latency_bound = gathered_rows / items * device.dram_latency_s.value / GATHER_ROWS_IN_FLIGHT
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
                self._phase(device, "values", (probs, base.stream_all(s, "V"), base.write_out(s)),
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
        # timed at the device's clock; without a device the phases carry bytes only (no serial time)
        serial = 0.0 if device is None else \
            g * s.seq * SELECT_CYCLES_PER_ELEMENT / device.clock_hz.value + g * s.k * SOFTMAX_S_PER_ELEMENT
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
