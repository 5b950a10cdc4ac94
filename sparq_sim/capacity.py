"""Capacity planning: KV-cache memory, the largest batch that fits, and the fastest configuration.

Formulas (docs/planning.md):

* KV bytes per token = layers x kv_heads x d_h x bytes per element x copies, with copies = 2 for
  dense (K and V) and for SparQ with K stored once, 3 for SparQ with K stored twice (K, its
  component-major copy, V): 50% more than dense.
* SparQ's running value mean (reallocation) adds layers x kv_heads x d_h fp32 numbers per sequence.
* Weights = parameters x bytes per weight.
* Reserve: ``RESERVE_FRACTION`` of device memory is kept for activations, workspace, the
  framework (CUDA context, allocator fragmentation) or the operating system. Assumed, not measured.
* max batch = floor((capacity - weights - reserve) / KV bytes per sequence); 0 if not even one
  sequence fits.
* Tensor parallelism over N devices (``sparq_sim.parallel``): each device holds 1/N of the
  weights and of the KV heads (at least one), so the sums above are per device; a step pays
  2 all-reduces per layer over the link. ``tp="auto"`` takes the smallest N the model allows
  (1, 2, 4, 8 ...) at which one sequence fits for both methods.
* Best configuration: the batch (powers of two up to the max batch, and the max batch itself) and
  the SparQ compression (``COMPRESSION_GRID`` unless given) with the most tokens/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sparq_sim import dtypes
from sparq_sim.models import ModelConfig
from sparq_sim.workload import DEFAULT_COMPRESSION, Workload

RESERVE_FRACTION = 0.10   # assumed: activations, workspace, framework/OS share of device memory
VALUE_MEAN_BYTES = 4      # the running value mean is kept in fp32 (docs/method.md)
# Compressions searched for the best configuration: 1/16 is the most aggressive setting whose
# accuracy the SparQ paper reports (r = 8 of d_h = 128); 1/2 the least.
COMPRESSION_GRID = (1 / 2, 1 / 4, 1 / 8, 1 / 16)


def kv_copies(method: str, store_k: str = "twice") -> int:
    """How many S x d_h tensors per KV head and layer the method keeps."""
    if method == "dense":
        return 2
    if method != "sparq":
        raise ValueError(f"unknown method {method!r}")
    return 3 if store_k == "twice" else 2


def kv_bytes_per_token(model: ModelConfig, kv_dtype: str = "float16", method: str = "dense",
                       store_k: str = "twice") -> int:
    """KV-cache bytes one more token of one sequence costs."""
    return model.layers * model.kv_heads * model.head_dim * dtypes.nbytes(kv_dtype) * kv_copies(method, store_k)


def state_bytes_per_sequence(model: ModelConfig, method: str, reallocate: bool = True) -> int:
    """Per-sequence state besides the cache: SparQ's fp32 running value mean."""
    if method == "sparq" and reallocate:
        return model.layers * model.kv_heads * model.head_dim * VALUE_MEAN_BYTES
    return 0


def sequence_bytes(model: ModelConfig, seq: int, method: str, kv_dtype: str = "float16", store_k: str = "twice",
                   reallocate: bool = True) -> int:
    """Device memory one sequence of `seq` tokens holds: its KV cache and the method's state."""
    return (kv_bytes_per_token(model, kv_dtype, method, store_k) * seq
            + state_bytes_per_sequence(model, method, reallocate))


def weights_bytes(model: ModelConfig, weight_dtype: str = "float16") -> float:
    return model.params * dtypes.nbytes(weight_dtype)


def max_batch(capacity: float, weights: float, reserve: float, per_sequence: float) -> int:
    """Largest batch whose caches fit beside the weights and the reserve; 0 if none does."""
    free = capacity - weights - reserve
    if free <= 0 or per_sequence <= 0:
        return 0
    return int(math.floor(free / per_sequence))


def batch_grid(limit: int) -> list[int]:
    """Powers of two up to `limit`, and `limit` itself."""
    if limit < 1:
        return []
    out = {limit}
    b = 1
    while b <= limit:
        out.add(b)
        b *= 2
    return sorted(out)


def memory_use(w: Workload, device, reserve_fraction: float = RESERVE_FRACTION) -> dict:
    """Device memory one workload needs per method (weights, the whole batch's KV caches and
    SparQ's running value mean) and whether it fits beside the reserve, by the rule of `plan`."""
    capacity = device.capacity_bytes.value
    reserve = reserve_fraction * capacity
    weights = weights_bytes(w.model, w.weight_dtype)
    out = {"capacity_bytes": capacity, "reserve_bytes": reserve, "weights_bytes": weights}
    for method in ("dense", "sparq"):
        per_seq = sequence_bytes(w.model, w.seq, method, w.kv_dtype, w.store_k, w.reallocate)
        need = weights + w.batch * per_seq
        out[method] = {"memory_bytes": need, "fits_in_memory": need + reserve <= capacity}
    return out


@dataclass(frozen=True)
class MethodPlan:
    method: str
    compression: float | None     # SparQ's setting (ideal traffic fraction target); None for dense
    r: int | None
    k: int | None
    kv_bytes_per_token: int
    kv_bytes_per_sequence: int
    max_batch: int
    tokens_per_s: float           # whole batch, at max_batch (0 when nothing fits)
    step_time_s: float | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Plan:
    device: object
    model: ModelConfig
    seq: int
    implementation: str
    timing: str
    capacity_bytes: float
    weights_bytes: float
    reserve_bytes: float
    reserve_fraction: float
    dense: MethodPlan
    sparq: MethodPlan                           # at the first compression listed
    sparq_variants: tuple[MethodPlan, ...]      # one per compression listed
    best: dict | None                           # batch and compression with the most tokens/s
    dense_best: dict | None
    curves: dict = field(default_factory=dict)  # label -> (batches, tokens/s) for the plot
    notes: tuple[str, ...] = ()
    tp: int = 1                                 # devices the model is split over (sums are per device)

    def to_dict(self) -> dict:
        return {
            "hardware": self.device.name, "model": self.model.to_dict(), "seq": self.seq,
            "implementation": self.implementation, "timing": self.timing,
            "capacity_bytes": self.capacity_bytes, "weights_bytes": self.weights_bytes,
            "reserve_bytes": self.reserve_bytes, "reserve_fraction": self.reserve_fraction,
            "dense": {**self.dense.to_dict(), "best": self.dense_best},
            "sparq": self.sparq.to_dict(),
            "sparq_variants": [v.to_dict() for v in self.sparq_variants],
            "best": self.best, "notes": list(self.notes),
            "tp": self.tp,
            "per_device": {"capacity_bytes": self.capacity_bytes, "weights_bytes": self.weights_bytes,
                           "reserve_bytes": self.reserve_bytes,
                           "kv_bytes_dense_at_max_batch": self.dense.max_batch * self.dense.kv_bytes_per_sequence,
                           "kv_bytes_sparq_at_max_batch": self.sparq.max_batch * self.sparq.kv_bytes_per_sequence},
        }


@dataclass(frozen=True)
class PlanSettings:
    """What a plan varies besides the device, the model and S (the defaults are `plan`'s)."""

    compressions: tuple[float, ...] | None = None   # SparQ compressions to report (None: 1/8, searching the grid)
    kv_dtype: str = "float16"
    weight_dtype: str = "float16"
    store_k: str = "twice"
    reallocate: bool = True
    implementation: object = "ideal"                # a name or an implementation model
    timing: str | None = None
    reserve_fraction: float = RESERVE_FRACTION
    tp: int | str = 1                               # devices, or "auto": the smallest at which one sequence fits

    def per_sequence_bytes(self, model: ModelConfig, seq: int, method: str) -> int:
        """KV cache and state bytes one sequence of `seq` tokens needs under these settings."""
        return sequence_bytes(model, seq, method, self.kv_dtype, self.store_k, self.reallocate)


def plan(device, model: ModelConfig, seq: int, settings: PlanSettings | None = None, **changes) -> Plan:
    """Memory, max batch and tokens/s for dense and SparQ, and the best batch and compression.

    `settings` (default ``PlanSettings()``), with any of its fields changed by keyword in `changes`.
    With `tp` > 1 the memory figures are one device's and tokens/s is the whole group's.
    """
    from dataclasses import replace

    from sparq_sim.implementations import resolve
    from sparq_sim.parallel import communication_time, shard_model
    from sparq_sim.timing import timer_for

    s = replace(settings or PlanSettings(), **changes)
    tp = s.tp
    if tp == "auto":
        tp = smallest_tp(device, model, seq, kv_dtype=s.kv_dtype, weight_dtype=s.weight_dtype, store_k=s.store_k,
                         reallocate=s.reallocate, reserve_fraction=s.reserve_fraction)
    full, model = model, shard_model(model, tp)
    if tp > 1:
        communication_time(device, full, tp, 1)     # the device must have a link
    compressions = tuple(s.compressions) if s.compressions else (DEFAULT_COMPRESSION,)
    search = compressions if len(compressions) > 1 or compressions != (DEFAULT_COMPRESSION,) else COMPRESSION_GRID
    implementation = s.implementation
    impl = resolve(implementation)
    timer = timer_for(impl, s.timing, device)
    capacity = device.capacity_bytes.value
    weights = weights_bytes(model, s.weight_dtype)
    reserve = s.reserve_fraction * capacity
    per_seq = {m: s.per_sequence_bytes(model, seq, m) for m in ("dense", "sparq")}
    limits = {m: max_batch(capacity, weights, reserve, per_seq[m]) for m in ("dense", "sparq")}
    runs = _Predictions(device, full, model, seq, s, tp, impl, timer,
                        total=len(batch_grid(limits["dense"])) + len(set(search) | set(compressions))
                        * max(1, len(batch_grid(limits["sparq"]))) + 1)

    def method_plan(method, c):
        limit = limits[method]
        p = runs.at(limit, c if c is not None else compressions[0]) if limit else None
        w = p.workload if (p and c is not None) else None
        return MethodPlan(method=method, compression=c, r=w.r if w else None, k=w.k if w else None,
                          kv_bytes_per_token=kv_bytes_per_token(model, s.kv_dtype, method, s.store_k),
                          kv_bytes_per_sequence=per_seq[method], max_batch=limit,
                          tokens_per_s=runs.rate(p, method) if p else 0.0,
                          step_time_s=runs.step_s(p, method) if p else None)

    dense = method_plan("dense", None)
    variants = tuple(method_plan("sparq", c) for c in compressions)
    notes = [f"{method}: not even one sequence of {seq} tokens fits: weights "
             f"{weights / 1e9:.3g} GB + reserve {reserve / 1e9:.3g} GB + one sequence "
             f"{per_seq[method] / 1e9:.3g} GB > capacity {capacity / 1e9:.3g} GB"
             for method, limit in limits.items() if not limit]
    curves: dict = {}
    dense_best = _best_dense(runs, batch_grid(limits["dense"]), compressions[0], curves)
    best = _best_sparq(runs, batch_grid(limits["sparq"]), search, compressions, curves)
    runs.close()
    return Plan(device=device, model=full, seq=seq, implementation=impl.name, timing=timer.name,
                capacity_bytes=capacity, weights_bytes=weights, reserve_bytes=reserve,
                reserve_fraction=s.reserve_fraction, dense=dense, sparq=variants[0], sparq_variants=variants,
                best=best, dense_best=dense_best, curves=curves, notes=tuple(notes), tp=tp)


class _Predictions:
    """The predictions a plan needs, one per (batch, compression), each made once; step times include
    the tensor-parallel all-reduces of the whole model `full` over `tp` devices."""

    def __init__(self, device, full: ModelConfig, shard: ModelConfig, seq: int, s: PlanSettings, tp: int,
                 impl, timer, total: int):
        from sparq_sim.progress import progress
        self.device, self.full, self.shard, self.seq, self.settings, self.tp = device, full, shard, seq, s, tp
        self.impl, self.timer = impl, timer
        self._cache: dict = {}
        self._bar = progress(total=total, desc="plan", unit="prediction")

    def at(self, batch: int, compression: float):
        """The prediction at this batch and SparQ compression."""
        from sparq_sim.predict import predict
        key = (batch, compression)
        if key not in self._cache:
            s = self.settings
            w = Workload.build(self.shard, self.seq, batch=batch, compression=compression, kv_dtype=s.kv_dtype,
                               weight_dtype=s.weight_dtype, store_k=s.store_k, reallocate=s.reallocate)
            self._cache[key] = predict(w, self.device, self.impl, timer=self.timer)
            self._bar.update(1)
        return self._cache[key]

    def step_s(self, p, method: str) -> float:
        from sparq_sim.parallel import communication_time
        return getattr(p, method).step.time_s + communication_time(self.device, self.full, self.tp,
                                                                   p.workload.batch)

    def rate(self, p, method: str) -> float:
        """Tokens/s of the whole batch."""
        t = self.step_s(p, method)
        return p.workload.batch / t if t > 0 else 0.0

    def close(self) -> None:
        self._bar.close()


def _best_dense(runs: _Predictions, grid: list[int], compression: float, curves: dict) -> dict | None:
    """Dense's batch with the most tokens/s over `grid` (its curve added to `curves`); None if empty."""
    rates = [runs.rate(runs.at(b, compression), "dense") for b in grid]
    if not grid:
        return None
    i = max(range(len(grid)), key=rates.__getitem__)
    curves["dense"] = (grid, rates)
    return {"batch": grid[i], "tokens_per_s": rates[i]}


def _best_sparq(runs: _Predictions, grid: list[int], search, shown, curves: dict) -> dict | None:
    """SparQ's batch and compression (of `search`) with the most tokens/s; the curves of the
    compressions `shown` are added to `curves`."""
    best = None
    for c in search:
        rates = [runs.rate(runs.at(b, c), "sparq") for b in grid]
        if c in shown:
            curves[f"SparQ {_fraction(c)}"] = (grid, rates)
        for b, t in zip(grid, rates):
            if best is None or t > best["tokens_per_s"]:
                w = runs.at(b, c).workload
                best = {"method": "sparq", "batch": b, "compression": c, "r": w.r, "k": w.k, "tokens_per_s": t}
    return best


def smallest_tp(device, model: ModelConfig, seq: int, *, kv_dtype="float16", weight_dtype="float16",
                store_k="twice", reallocate=True, reserve_fraction=RESERVE_FRACTION) -> int:
    """The smallest tensor-parallel degree at which one sequence of `seq` fits for both methods."""
    from sparq_sim.errors import UserError
    from sparq_sim.parallel import shard_model, tp_choices
    capacity = device.capacity_bytes.value
    for n in tp_choices(model):
        m = shard_model(model, n)
        fits = all(max_batch(capacity, weights_bytes(m, weight_dtype), reserve_fraction * capacity,
                             sequence_bytes(m, seq, method, kv_dtype, store_k, reallocate)) >= 1
                   for method in ("dense", "sparq"))
        if fits:
            return n
    raise UserError(f"{model.name} at S = {seq} does not fit on {device.name} at any tensor-parallel "
                    f"degree up to {tp_choices(model)[-1]}")


def _fraction(c: float) -> str:
    from fractions import Fraction
    f = Fraction(c).limit_denominator(1024)
    return f"{f.numerator}/{f.denominator}"
