"""Whole requests: time to first token, the decode steps over a growing sequence, and their sum.

A request of P prompt tokens generating N tokens: the prefill (``sparq_sim.prefill``) yields the
first token (TTFT); then N - 1 decoding steps, the j-th attending over S = P + j positions, yield
the others. TPOT (time per output token) is the decode time over N - 1, as serving benchmarks
define it; its p99 is over the N - 1 steps.

The per-step time comes from ``sparq_sim.predict.predict`` (the implementation model and timer
the user chose), evaluated at ``points`` sequence lengths evenly spaced over the decode and
interpolated linearly at every step in between; the sum and percentiles are then taken over the
N - 1 interpolated steps. This is exact wherever the step time is linear in S between two
evaluations (the roofline of a memory-bound step is: every byte term grows linearly with S and
k = S*C/2), and close elsewhere (tests/test_request.py compares with evaluating every step).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sparq_sim.errors import UserError
from sparq_sim.models import ModelConfig
from sparq_sim.prefill import Prefill, prefill

METHODS = ("dense", "sparq")
DEFAULT_POINTS = 17   # step-time evaluations per request: fast, and exact for a linear step time


@dataclass(frozen=True)
class MethodRequest:
    ttft_s: float
    tpot_mean_s: float
    tpot_p99_s: float
    total_s: float
    generate: int
    prefill: Prefill

    @property
    def tokens_per_s(self) -> float:
        """Output tokens per second of one request, prefill included."""
        return self.generate / self.total_s if self.total_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {"ttft_s": self.ttft_s, "tpot_mean_s": self.tpot_mean_s, "tpot_p99_s": self.tpot_p99_s,
                "total_s": self.total_s, "tokens_per_s": self.tokens_per_s}


@dataclass(frozen=True)
class RequestPrediction:
    """`batch` equal requests of `prompt` tokens generating `generate`, dense against SparQ."""

    prompt: int
    generate: int
    batch: int
    points: tuple[int, ...]                 # sequence lengths where the step time was evaluated
    dense: MethodRequest
    sparq: MethodRequest
    sparq_faster_from_seq: int | None       # shortest S at which a SparQ step beats a dense one
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def speedup(self) -> float:
        return self.dense.total_s / self.sparq.total_s

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "generate": self.generate, "batch": self.batch,
                "evaluated_at_seq": list(self.points), "dense": self.dense.to_dict(),
                "sparq": self.sparq.to_dict(), "speedup_total": self.speedup,
                "sparq_faster_from_seq": self.sparq_faster_from_seq, "notes": list(self.notes)}


def decode_seqs(prompt: int, generate: int) -> tuple[int, int]:
    """First and last sequence length of the decode steps (none when generate is 1)."""
    return prompt + 1, prompt + generate - 1


def evaluation_points(first: int, last: int, points: int = DEFAULT_POINTS) -> list[int]:
    """Up to `points` integer sequence lengths evenly spaced from first to last, both included."""
    import numpy as np
    if last < first:
        return []
    n = min(points, last - first + 1)
    return sorted({int(round(x)) for x in np.linspace(first, last, n)})


def integrate_steps(step_time, first: int, last: int, points: int = DEFAULT_POINTS) -> tuple[list[int], "object"]:
    """Step times at every S in [first, last], interpolated from `step_time(S)` at a few points."""
    import numpy as np
    xs = evaluation_points(first, last, points)
    if not xs:
        return [], np.zeros(0)
    ys = [step_time(s) for s in xs]
    return xs, np.interp(np.arange(first, last + 1), xs, ys)


def summarise(ttft: float, steps, generate: int, pre: Prefill) -> MethodRequest:
    import numpy as np
    if len(steps) == 0:
        return MethodRequest(ttft, 0.0, 0.0, ttft, generate, pre)
    decode = float(np.sum(steps))
    return MethodRequest(ttft, decode / len(steps), float(np.percentile(steps, 99)), ttft + decode,
                         generate, pre)


def crossover_seq(faster, low: int = 1, high: int = 1 << 24) -> int | None:
    """Smallest S in [low, high] with faster(S) true, by bisection (assumes it stays true above)."""
    if not faster(high):
        return None
    if faster(low):
        return low
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if faster(mid) else (mid, high)
    return high


def predict_request(device, model: ModelConfig, prompt: int, generate: int, *, batch: int = 1,
                    r: int | None = None, k: int | None = None, compression: float | None = None,
                    local_window: int = 0, kv_dtype: str = "float16", weight_dtype: str = "float16",
                    store_k: str = "twice", reallocate: bool = True, implementation="ideal",
                    timing: str | None = None, points: int = DEFAULT_POINTS, tp: int = 1) -> RequestPrediction:
    """TTFT, TPOT (mean, p99), total time and tokens/s of `batch` equal requests, dense and SparQ.

    r and k follow ``Workload.build`` at every S: given values stay fixed (k capped at S),
    missing ones follow the compression (k = S*C/2 grows with the sequence). With `tp` > 1 the
    model is split over tp devices (``sparq_sim.parallel``) and every pass pays its all-reduces.
    """
    from sparq_sim.parallel import communication_time, shard_model
    from sparq_sim.implementations import resolve
    from sparq_sim.predict import predict_method
    from sparq_sim.timing import timer_for
    from sparq_sim.workload import Workload

    if prompt < 1 or generate < 1:
        raise UserError(f"a request needs a prompt and an output of at least 1 token "
                        f"(got prompt {prompt}, generate {generate})")
    impl = resolve(implementation)
    timer = timer_for(impl, timing, device)
    storage = dict(kv_dtype=kv_dtype, weight_dtype=weight_dtype, store_k=store_k)
    full, model = model, shard_model(model, tp)
    step_comm = communication_time(device, full, tp, batch)
    cache: dict = {}

    def step(seq: int, method: str) -> float:
        if (seq, method) not in cache:
            w = Workload.build(model, seq, batch=batch, r=r, k=None if k is None else min(k, seq),
                               compression=compression, reallocate=reallocate, **storage)
            if local_window:
                w = replace(w, local_window=min(local_window, w.k))
            cache[(seq, method)] = predict_method(w, method, impl, timer).step.time_s + step_comm
        return cache[(seq, method)]

    first, last = decode_seqs(prompt, generate)
    out, xs = {}, []
    for method in METHODS:
        pre = prefill(device, model, prompt, batch, method=method,
                      extra_s=communication_time(device, full, tp, prompt * batch), **storage)
        xs, steps = integrate_steps(lambda s: step(s, method), first, last, points)
        out[method] = summarise(pre.time_s, steps, generate, pre)
    cross = crossover_seq(lambda s: step(s, "sparq") < step(s, "dense"), 1, max(last, 1 << 20))
    notes = ()
    if cross is None:
        notes = (f"a SparQ step is not faster than a dense one at any S up to {max(last, 1 << 20)}",)
    return RequestPrediction(prompt, generate, batch, tuple(xs), out["dense"], out["sparq"], cross, notes)


def format_request(q: RequestPrediction) -> str:
    """The request section of predict's table."""
    from sparq_sim.tables import render_table
    from sparq_sim.units import format_seconds

    d, s = q.dense, q.sparq
    rows = [
        ["time to first token", format_seconds(d.ttft_s), format_seconds(s.ttft_s), f"{d.ttft_s / s.ttft_s:.2f}x"],
        ["time per output token (mean)", format_seconds(d.tpot_mean_s), format_seconds(s.tpot_mean_s),
         f"{d.tpot_mean_s / s.tpot_mean_s:.2f}x" if s.tpot_mean_s else "-"],
        ["time per output token (p99)", format_seconds(d.tpot_p99_s), format_seconds(s.tpot_p99_s),
         f"{d.tpot_p99_s / s.tpot_p99_s:.2f}x" if s.tpot_p99_s else "-"],
        ["total", format_seconds(d.total_s), format_seconds(s.total_s), f"{q.speedup:.2f}x"],
        ["tokens/s per request", f"{d.tokens_per_s:.1f}", f"{s.tokens_per_s:.1f}", f"{q.speedup:.2f}x"],
    ]
    if q.batch > 1:
        rows.append(["tokens/s (whole batch)", f"{q.batch * d.tokens_per_s:.1f}",
                     f"{q.batch * s.tokens_per_s:.1f}", f"{q.speedup:.2f}x"])
    lines = [f"request: prompt {q.prompt}, {q.generate} tokens generated, batch {q.batch} "
             f"(decode steps at S = {q.prompt + 1}..{q.prompt + q.generate - 1}, step time evaluated "
             f"at {len(q.points)} points and interpolated)",
             render_table(rows, ["", "dense", "sparq", "dense/sparq"])]
    if q.sparq_faster_from_seq is not None:
        lines.append(f"a SparQ decode step beats a dense one from S = {q.sparq_faster_from_seq}")
    lines += [f"note: {n}" for n in q.notes]
    return "\n".join(lines)
