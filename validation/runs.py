"""The timed runs of ``validate --local``: each case's kernel called on this machine with the
harness of ``sparq_sim.kernels.timing``, one measurement row per case.

Timing: inputs rotated over copies that together exceed twice the LLC, and the caches evicted
(``timing.CacheFlush``, untimed) before every timed call, since SparQ calls touch too little of
each copy for rotation alone to keep them cold; warm-up, repeats, median; ``ROUNDS`` rounds over
all cases, keeping each case's fastest round median (a burst of other work on the shared VM hits
one round). Calibration and validation cases measured together share those rounds, so both are
measured under the same machine conditions (this VM's bandwidth and page-fault cost drift). The
stream read bandwidth the constants are relative to is timed in the same rounds, at fixed places
among the cases, and kept the same way: at each place the fastest round's median, as a case nearby
keeps its own, then the median over the places. One measurement before the rounds once read
9.8 GB/s on a machine whose rounds ran at 22 GB/s minutes later; four, one per round, once spread
from 28.5 to 51.1 GB/s.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

from sparq_sim.validation.cases import BATCH, DTYPE, HEAD_DIM, HEADS, IMPL

ROUNDS = 3    # interleaved timing rounds per case; the fastest round's median is kept
WARMUP = 2    # untimed calls per case and round
STREAM_REPEATS = 5          # timed passes of the stream read per measurement
STREAM_MIN_BYTES = 1 << 30  # its buffer: at least this, and 4 x the LLC
STREAM_PLACES = 8           # places among a round's cases where the stream read is timed


def available(kernels) -> tuple[set, list]:
    """Kernel labels that run here, and notes on those that do not."""
    import torch
    from sparq_sim.kernels import dense_attention, sparq_attention
    ok, notes = set(), []
    q = torch.randn(1, 2, 64)
    K = torch.randn(1, 2, 256, 64)
    V = torch.randn(1, 2, 256, 64)
    for kern in kernels:
        try:
            if kern.startswith("attn"):
                dense_attention(q, K, V, impl=IMPL[kern])
            else:
                sparq_attention(q, K, V, r=8, k=32, K_t=K.transpose(-1, -2).contiguous(), impl=IMPL[kern])
            ok.add(kern)
        except Exception as exc:  # a missing optional kernel is reported, not fatal
            notes.append(f"{kern} skipped: {type(exc).__name__}: {exc}")
    return ok, notes


class RotatingInputs:
    """Copies of (q, K, V, K_t, v_mean) at one S, rotated between calls so the caches start cold."""

    def __init__(self, S: int, llc: int):
        from sparq_sim.kernels.profiling import Case, make_inputs
        case = Case(batch=BATCH, heads=HEADS, kv_heads=HEADS, seq=S, head_dim=HEAD_DIM, r=1, k=1, dtype=DTYPE)
        per = 3 * BATCH * HEADS * S * HEAD_DIM * 4
        self.n = max(1, min(16, math.ceil(2 * llc / per) + 1))
        self.sets = [make_inputs(case, "cpu", S * 16 + i) for i in range(self.n)]
        self.i = 0

    def next(self):
        self.i = (self.i + 1) % self.n
        return self.sets[self.i]


def kernel_call(kern, r, k, inputs: RotatingInputs):
    """A no-argument call of the case's kernel on the next copy of `inputs`."""
    from sparq_sim.kernels import dense_attention, sparq_attention
    impl = IMPL[kern]
    if r is None:
        def call():
            q, K, V, _, _ = inputs.next()
            return dense_attention(q, K, V, impl=impl)
    else:
        def call():
            q, K, V, K_t, vm = inputs.next()
            return sparq_attention(q, K, V, r=r, k=k, K_t=K_t, v_mean=vm, impl=impl)
    return call


def _use_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    try:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except Exception:
        pass


class StreamRounds:
    """The stream read bandwidth timed among the rounds of kernel timings (numba parallel sum,
    ``kernels.membench.measure_stream``) at ``places`` fixed places of the cases' order: each place
    keeps its fastest round's median, as the cases around it keep theirs, and the figure is the
    median over the places (one fast spell of the shared VM moves one place, not the figure)."""

    def __init__(self, llc: int, matmul: bool = True):
        import numpy as np

        from sparq_sim.kernels.membench import framework_operands
        self.buffer = np.ones(max(STREAM_MIN_BYTES, 4 * llc) // 4, np.float32)
        self.medians: dict[int, list[float]] = {}
        self.matmul_medians: dict[int, list[float]] = {}
        # the framework matmul's keys: the same buffer, viewed in place
        self.K, self.q = framework_operands(self.buffer) if matmul else (None, None)

    @staticmethod
    def places(cases: int, places: int = STREAM_PLACES) -> list[int]:
        """Indices into the cases' order before which the stream is timed (evenly spaced)."""
        n = max(1, min(places, cases))
        return [i * cases // n for i in range(n)]

    def measure(self, place: int) -> None:
        from sparq_sim.kernels.membench import measure_framework_matmul, measure_stream
        self.medians.setdefault(place, []).append(measure_stream(self.buffer, STREAM_REPEATS)["median_Bps"])
        if self.K is not None:
            self.matmul_medians.setdefault(place, []).append(
                measure_framework_matmul(self.K, self.q, STREAM_REPEATS)["median_Bps"])

    def result(self, threads: int) -> tuple[float, str]:
        """(bytes/s, how it was measured), as the local calibration stores it."""
        return self._figure(self.medians, threads, "numba parallel float32 sum", "kernels.membench.measure_stream")

    def matmul_result(self, threads: int) -> tuple[float, str] | None:
        """PyTorch's batched matrix-vector read rate, kept the same way (None when not measured)."""
        if not self.matmul_medians:
            return None
        from sparq_sim.kernels.membench import FRAMEWORK_WHAT
        return self._figure(self.matmul_medians, threads, FRAMEWORK_WHAT, "kernels.membench.measure_framework_matmul")

    def _figure(self, medians: dict, threads: int, what: str, where: str) -> tuple[float, str]:
        import statistics
        fastest = [max(v) for v in medians.values()]
        rounds = max(len(v) for v in medians.values())
        return statistics.median(fastest), (
            f"measured in the timing rounds: {what} over {self.buffer.nbytes / 2**30:.2f} GiB "
            f"({where}), median over {len(fastest)} places among the cases of each place's "
            f"fastest of {rounds} rounds' medians of {STREAM_REPEATS} passes (places between {min(fastest) / 1e9:.1f} "
            f"and {max(fastest) / 1e9:.1f} GB/s), {threads} threads, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}")


@dataclass(frozen=True)
class RoundRates:
    """What was timed beside the cases, in the same rounds: (bytes/s, how) each."""
    stream: tuple[float, str]                  # the stream read (the constants are relative to it)
    matmul: tuple[float, str] | None = None    # PyTorch's batched matrix-vector product's read rate


def measure(cases, threads: int, quick: bool, what: str) -> tuple[list, list, RoundRates]:
    """Run the cases; returns measurement rows (schema dicts, in the order of `cases`), notes, and
    the rates timed in the same rounds (the stream read, the framework's matmul).

    ``ROUNDS`` rounds, each over every case of every S (ordered by S, every other round backwards),
    with all inputs kept alive: a slow spell
    of this shared VM (bandwidth drift, costlier page faults) hits one round of all cases alike,
    and each case keeps its fastest round's median. Calibration and validation cases passed
    together are therefore measured under the same conditions.
    """
    from sparq_sim.kernels import timing
    from sparq_sim.machine import cpu_model, llc_bytes
    from sparq_sim.progress import progress
    _use_threads(threads)
    timing.steady_allocator()
    ok, notes = available(sorted({c[0] for c in cases}))
    cases = [c for c in cases if c[0] in ok]
    llc = llc_bytes()
    flush = timing.CacheFlush(llc)
    budget = 0.45 if quick else 0.8  # seconds per case over all rounds
    max_reps = 45 if quick else 90  # per case over all rounds; the time budget stops long calls sooner
    inputs = {S: RotatingInputs(S, llc) for S in sorted({c[1] for c in cases})}
    stream = StreamRounds(llc)
    best: dict = {}
    total, t0 = len(cases), time.perf_counter()
    # by S, so that calibration (512, 2k, 8k, 32k) and validation (1k, 4k, 16k, 64k) sizes alternate,
    # and every other round backwards, so that a drift within a round biases neither set
    by_seq = sorted(cases, key=lambda c: c[1])
    bar = progress(total=ROUNDS * total, desc=what.strip(), unit="case")
    places = set(StreamRounds.places(total))
    for rnd in range(ROUNDS):
        order = list(enumerate(by_seq)) if rnd % 2 == 0 else list(enumerate(by_seq))[::-1]
        for i, c in order:
            if i in places:
                stream.measure(i)
            kern, S, r, k = c
            bar.set_postfix_str(f"{kern} S={S} r={r or '-'} k={k or '-'}", refresh=False)
            res = timing.time_call(kernel_call(kern, r, k, inputs[S]), tuple, WARMUP, max(5, max_reps // ROUNDS),
                                   flush=flush, budget_s=budget / ROUNDS)
            bar.update(1)
            if c not in best or res.median_s < best[c].median_s:
                best[c] = res
    del inputs
    bar.close()
    print(f"{what.strip()}: {total} cases x {ROUNDS} rounds in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    import torch
    device_name = f"local: {cpu_model()} ({threads} threads)"
    rates = RoundRates(stream.result(threads), stream.matmul_result(threads))
    return [_row(c, best[c], device_name, torch.__version__) for c in cases], notes, rates


def _row(case, res, device_name: str, torch_version: str) -> dict:
    """A measurement row in the published schema (validation/data/README.md)."""
    kern, S, r, k = case
    return {"device_name": device_name, "device": "cpu", "dtype": DTYPE, "n_head": HEADS,
            "head_dim": HEAD_DIM, "sequence_length": S, "batch_size": BATCH, "kernel": kern,
            "r": "" if r is None else r, "k": "" if k is None else k,
            "store_k_twice": "false" if kern.endswith("oneK") or r is None else "true",
            "duration_s": repr(res.median_s), "duration_stderr_s": repr(res.stderr_s), "reps": res.n * ROUNDS,
            "warmup": WARMUP, "torch_version": torch_version}


def to_measurements(rows):
    """The rows as validation measurements (as if read from their CSV)."""
    from sparq_sim.validation.measurements import parse_rows
    return parse_rows([{k: str(v) for k, v in r.items()} for r in rows], "local measurements")
