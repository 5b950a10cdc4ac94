"""Dense against SparQ for one workload on one device: bytes, time, bounds and speedups."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sparq_sim.implementations import DEFAULT_IMPLEMENTATION, resolve
from sparq_sim.timing import PhaseTime, timer_for
from sparq_sim.timing.result import classify
from sparq_sim.traffic import ideal_attention_bytes, weight_bytes
from sparq_sim.workload import Workload

METHODS = ("dense", "sparq")


@dataclass(frozen=True)
class Totals:
    """A sum over phases: the attention layers, or the whole decoding step."""

    bytes: float          # moved (granularity-rounded) bytes
    ideal_bytes: float    # the formula count of docs/method.md (plus weights for the step)
    time_s: float
    bound: str
    phases: tuple[PhaseTime, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, phases: list[PhaseTime], ideal_bytes: float) -> "Totals":
        sums = {"memory": 0.0, "compute": 0.0, "overhead": 0.0}
        for p in phases:
            sums["overhead"] += p.overhead_s
            sums["memory" if p.memory_s >= p.compute_s else "compute"] += max(p.memory_s, p.compute_s)
        return cls(bytes=sum(p.moved_bytes for p in phases), ideal_bytes=ideal_bytes,
                   time_s=sum(p.time_s for p in phases),
                   bound=classify(sums["memory"], sums["compute"], sums["overhead"]), phases=tuple(phases))

    def to_dict(self, with_phases: bool = True) -> dict:
        out = {"bytes": self.bytes, "ideal_bytes": self.ideal_bytes, "time_s": self.time_s,
               "bound": self.bound}
        if with_phases:
            out["phases"] = [p.to_dict() for p in self.phases]
        return out


@dataclass(frozen=True)
class MethodPrediction:
    attention: Totals
    step: Totals

    @property
    def tokens_per_s(self) -> float:
        return 0.0 if self.step.time_s <= 0 else 1.0 / self.step.time_s

    def to_dict(self) -> dict:
        return {"attention": self.attention.to_dict(), "step": self.step.to_dict(with_phases=False),
                "tokens_per_s": self.tokens_per_s}


@dataclass(frozen=True)
class Prediction:
    device: object
    workload: Workload
    implementation: str
    timing: str
    dense: MethodPrediction
    sparq: MethodPrediction
    model: object = field(default=None, repr=False, compare=False)   # the implementation model used

    @cached_property
    def error(self) -> dict | None:
        """The measured error of this estimate (None: not validated). Computed when asked, like
        ``bound``: sweeps and planning make many predictions and read none of it."""
        return None if self.model is None else _error_band(self.model, self.timing, self.workload, self.device)

    @cached_property
    def bound(self) -> "Prediction":
        """The ideal implementation's roofline for the same workload: the speed of light. Computed
        when asked, so callers that only need the estimate (sweeps, planning) do not pay for it."""
        if self.implementation == "ideal" and self.timing == "roofline":
            return self
        return predict(self.workload, self.device, "ideal", "roofline")

    @property
    def speedup(self) -> dict:
        return {part: getattr(self.dense, part).time_s / getattr(self.sparq, part).time_s
                for part in ("attention", "step")}

    def to_dict(self) -> dict:
        d = self.device
        bound = self.bound
        return {
            "hardware": {"name": d.name, "description": d.description, "kind": d.kind,
                         "bandwidth_Bps": d.bandwidth_Bps.value,
                         "sustained_bandwidth_Bps": d.sustained_bandwidth,
                         "access_granularity_bytes": d.granularity, "path": d.path},
            "workload": self.workload.to_dict(),
            "implementation": self.implementation,
            "timing": self.timing,
            "dense": self.dense.to_dict(),
            "sparq": self.sparq.to_dict(),
            "speedup": self.speedup,
            "bound": {"dense": bound.dense.to_dict(), "sparq": bound.sparq.to_dict(), "speedup": bound.speedup},
            "error": self.error or {"median_abs_pct": None, "p90_abs_pct": None,
                                    "source": "not validated: only calibrated estimates of measured kernels have a "
                                              "measured cross-device error (--timing calibrated with --impl "
                                              "published-* or gpt-fast on a GPU, published-torch on a CPU)"},
        }


def predict_method(w: Workload, method: str, impl, timer) -> MethodPrediction:
    """Time one method's attention phases and the rest of the step."""
    attention = timer.time_phases(impl.attention_phases(w, method, timer.device))
    other = timer.time_phases(impl.other_phases(w, timer.device))
    ideal_att = ideal_attention_bytes(w, method)
    return MethodPrediction(attention=Totals.of(attention, ideal_att),
                            step=Totals.of(attention + other, ideal_att + weight_bytes(w)))


def with_device_memory(impl):
    """The implementation model with the DRAM simulator's loaded row latency, where it times
    gathers by one (``with_row_latency``; the simulator sits above the implementation models)."""
    attach = getattr(impl, "with_row_latency", None)
    if attach is None or getattr(impl, "row_latency", None) is not None:
        return impl
    from sparq_sim.simulator.latency import row_latency
    return attach(row_latency)


def predict(w: Workload, device, implementation: str = DEFAULT_IMPLEMENTATION,
            timing: str | None = None, timer=None) -> Prediction:
    """Predict dense and SparQ decoding for workload `w` on `device`.

    `implementation` is a registry name or an implementation object (e.g. one configured with
    options such as ``get_implementation("llama.cpp").configure(threads=16)``). `timing` defaults
    to the implementation's own (``default_timing``: calibrated for the composed end-to-end
    models), else the roofline.
    """
    impl = with_device_memory(resolve(implementation))
    check = getattr(impl, "check_device", None)
    if check is not None:
        check(device)
    timer = timer or timer_for(impl, timing, device)
    return Prediction(device, w, impl.name, timer.name, *(predict_method(w, m, impl, timer) for m in METHODS),
                      model=impl)


def _error_band(impl, timing: str, w: Workload, device) -> dict | None:
    """The measured error of such a prediction: the cross-device error of calibrated estimates of
    the measured kernels on this kind of device, and the recorded end-to-end checks of this
    implementation and timing against published whole-decoder speedups on this kind of device."""
    from sparq_sim.calibration import accuracy
    labels = getattr(impl, "kernel_labels", None)
    band = None
    if timing == "calibrated" and labels is not None:
        band = accuracy.band(labels(w), device.kind)
    checks = accuracy.end_to_end(impl.name, device.kind, timing)
    if not checks:
        return band
    summary = "; ".join(accuracy.describe(c) for c in checks)
    if band is None:
        from statistics import median
        band = {"median_abs_pct": None, "p90_abs_pct": None,
                "speedup_median_abs_pct": median(abs(c["error_pct"]) for c in checks), "speedup_p90_abs_pct": None,
                "source": f"time per call not validated; step speedup against published end-to-end runs: {summary}"}
    else:
        band = {**band, "source": f"{band['source']}; step speedup against published end-to-end runs: {summary}"}
    return {**band, "end_to_end": checks}
