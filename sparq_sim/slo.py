"""Latency targets and cost: tokens/s per GPU against tokens/s per user, and the best point.

Every configuration is a point: method (dense, or SparQ at a compression), tensor-parallel
degree N and batch B (powers of two up to the batch that fits at S, that batch, and the largest
batch meeting the TPOT target, found by bisection). Its decoding step at S gives
  time per output token (TPOT) = step time (all-reduces included),
  tokens/s per user = 1 / TPOT,  tokens/s per GPU = B / TPOT / N,
and its time to first token is the prefill of one S-token prompt on the N devices (no queueing:
``serve-sim`` adds that). A point meets the targets when TPOT <= the TPOT target and TTFT <=
the TTFT target (when given). The curve of a method is its Pareto front: the points no other
point beats on both axes. The best point is the one within the targets with the most tokens/s
per GPU; its cost per million output tokens = GPU-hour price / 3600 / (tokens/s per GPU) x 1e6.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sparq_sim.capacity import (COMPRESSION_GRID, RESERVE_FRACTION, batch_grid, max_batch, sequence_bytes,
                                weights_bytes, _fraction)
from sparq_sim.errors import UserError
from sparq_sim.models import ModelConfig

MAX_TP = 8    # one node of 8 GPUs: the usual ceiling for tensor parallelism


@dataclass(frozen=True)
class Point:
    method: str
    compression: float | None
    tp: int
    batch: int
    tpot_s: float
    ttft_s: float
    meets: bool

    @property
    def tokens_per_s_per_user(self) -> float:
        return 1.0 / self.tpot_s

    @property
    def tokens_per_s_per_gpu(self) -> float:
        return self.batch / self.tpot_s / self.tp

    @property
    def label(self) -> str:
        return "dense" if self.compression is None else f"SparQ {_fraction(self.compression)}"

    def cost_per_million(self, gpu_hour_cost: float | None) -> float | None:
        if gpu_hour_cost is None:
            return None
        return gpu_hour_cost / 3600.0 / self.tokens_per_s_per_gpu * 1e6

    def to_dict(self, gpu_hour_cost: float | None = None) -> dict:
        out = asdict(self)
        out.update(tokens_per_s_per_user=self.tokens_per_s_per_user,
                   tokens_per_s_per_gpu=self.tokens_per_s_per_gpu)
        if gpu_hour_cost is not None:
            out["usd_per_million_tokens"] = self.cost_per_million(gpu_hour_cost)
        return out


@dataclass(frozen=True)
class TargetPlan:
    seq: int
    tpot_slo_s: float
    ttft_slo_s: float | None
    gpu_hour_cost: float | None
    points: tuple[Point, ...]
    fronts: dict                     # method -> Pareto points, fastest user first
    best: dict                       # method -> best Point within targets, or None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        c = self.gpu_hour_cost
        return {"seq": self.seq, "tpot_slo_s": self.tpot_slo_s, "ttft_slo_s": self.ttft_slo_s,
                "gpu_hour_cost": c,
                "best": {m: (p.to_dict(c) if p else None) for m, p in self.best.items()},
                "curve": {m: [p.to_dict(c) for p in pts] for m, pts in self.fronts.items()},
                "points": len(self.points), "notes": list(self.notes)}


def pareto_front(points) -> list[Point]:
    """Points not beaten on both tokens/s per user and per GPU, fastest user first."""
    out, best_gpu = [], -1.0
    for p in sorted(points, key=lambda p: (-p.tokens_per_s_per_user, -p.tokens_per_s_per_gpu)):
        if p.tokens_per_s_per_gpu > best_gpu:
            out.append(p)
            best_gpu = p.tokens_per_s_per_gpu
    return out


def largest_batch_within(tpot, limit: int, target_s: float) -> int:
    """Largest batch in [1, limit] whose step time meets the target (0 if none), by bisection:
    the step time grows with the batch."""
    if tpot(1) > target_s:
        return 0
    low, high = 1, limit
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if tpot(mid) <= target_s else (low, mid - 1)
    return low


def plan_targets(device, model: ModelConfig, seq: int, tpot_slo_s: float, *, ttft_slo_s: float | None = None,
                 gpu_hour_cost: float | None = None, compressions=None, tps=None, kv_dtype="float16",
                 weight_dtype="float16", store_k="twice", reallocate=True, implementation="ideal",
                 timing=None, reserve_fraction=RESERVE_FRACTION) -> TargetPlan:
    """Search method, compression, tensor parallelism and batch for the most tokens/s per GPU
    within the latency targets."""
    from sparq_sim.batch import mixed_step
    from sparq_sim.implementations import resolve
    from sparq_sim.parallel import communication_time, device_link, shard_model, tp_choices
    from sparq_sim.prefill import prefill
    from sparq_sim.timing import timer_for

    if tpot_slo_s <= 0 or (ttft_slo_s is not None and ttft_slo_s <= 0):
        raise UserError("latency targets must be positive")
    if gpu_hour_cost is not None and gpu_hour_cost <= 0:
        raise UserError(f"bad GPU-hour cost {gpu_hour_cost!r}: must be positive")
    impl = resolve(implementation)
    timer = timer_for(impl, timing, device)
    compressions = tuple(compressions) if compressions else COMPRESSION_GRID
    if tps is None:
        tps = [n for n in tp_choices(model, MAX_TP) if n == 1 or device_link(device) is not None]
    storage = dict(kv_dtype=kv_dtype, weight_dtype=weight_dtype, store_k=store_k, reallocate=reallocate)
    capacity = device.capacity_bytes.value
    points, notes = [], []
    for tp in tps:
        shard = shard_model(model, tp)
        ttft = prefill(device, shard, seq, kv_dtype=kv_dtype, weight_dtype=weight_dtype, store_k=store_k,
                       extra_s=communication_time(device, model, tp, seq)).time_s
        for method, cs in (("dense", (None,)), ("sparq", compressions)):
            per_seq = sequence_bytes(shard, seq, method, kv_dtype, store_k, reallocate)
            limit = max_batch(capacity, weights_bytes(shard, weight_dtype), reserve_fraction * capacity, per_seq)
            for c in cs:
                times: dict = {}

                def tpot(b):
                    if b not in times:
                        times[b] = mixed_step(device, model, [seq] * b, method, compression=c,
                                              implementation=impl, timer=timer, tp=tp, **storage).time_s
                    return times[b]

                batches = set(batch_grid(limit))
                if limit:
                    batches.add(largest_batch_within(tpot, limit, tpot_slo_s))
                for b in sorted(batches - {0}):
                    meets = tpot(b) <= tpot_slo_s and (ttft_slo_s is None or ttft <= ttft_slo_s)
                    points.append(Point(method, c, tp, b, tpot(b), ttft, meets))
    if not points:
        notes.append(f"not even one sequence of {seq} tokens fits at tensor-parallel degrees {tps}")
    fronts, best = {}, {}
    for method in ("dense", "sparq"):
        mine = [p for p in points if p.method == method]
        fronts[method] = pareto_front(mine)
        ok = [p for p in mine if p.meets]
        best[method] = max(ok, key=lambda p: (p.tokens_per_s_per_gpu, -p.tp)) if ok else None
        if mine and not ok:
            notes.append(f"{method}: no configuration meets the targets (fastest TPOT "
                         f"{min(p.tpot_s for p in mine) * 1e3:.3g} ms, fastest TTFT "
                         f"{min(p.ttft_s for p in mine):.3g} s)")
    return TargetPlan(seq, tpot_slo_s, ttft_slo_s, gpu_hour_cost, tuple(points), fronts, best, tuple(notes))


def format_targets(t: TargetPlan) -> str:
    from sparq_sim.tables import render_table
    from sparq_sim.units import format_seconds
    head = f"latency targets at S = {t.seq}: TPOT <= {format_seconds(t.tpot_slo_s)}"
    if t.ttft_slo_s is not None:
        head += f", TTFT <= {format_seconds(t.ttft_slo_s)}"
    rows = []
    for method, p in t.best.items():
        if p is None:
            rows.append([method, "-", "-", "-", "-", "-", "-", "-", "-"])
            continue
        cost = p.cost_per_million(t.gpu_hour_cost)
        rows.append([method, p.label, str(p.tp), str(p.batch), format_seconds(p.tpot_s), format_seconds(p.ttft_s),
                     f"{p.tokens_per_s_per_user:.1f}", f"{p.tokens_per_s_per_gpu:.1f}",
                     "-" if cost is None else f"{cost:.3g}"])
    lines = [head + f" ({len(t.points)} configurations searched: batch, compression, tensor parallelism)",
             render_table(rows, ["best", "setting", "tp", "batch", "TPOT", "TTFT", "tok/s/user", "tok/s/GPU",
                                 "$ per M tokens"])]
    d, s = t.best["dense"], t.best["sparq"]
    if d and s:
        lines.append(f"SparQ serves {s.tokens_per_s_per_gpu / d.tokens_per_s_per_gpu:.2f}x the tokens per GPU "
                     "of dense within the targets")
    lines += [f"note: {n}" for n in t.notes]
    return "\n".join(lines)
