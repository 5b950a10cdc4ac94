"""One method with one setting on one device: attention and step bytes and time, KV memory, the
largest batch that fits and tokens/s.

Times come from the roofline timer over the method's ideal phases (moved bytes rounded to the
device's access granularity), the rest of the step from the ideal implementation's weight phase,
so every method is timed by the same well-defined rule. Memory and max batch use
sparq_sim.capacity (weights, the assumed reserve, KV cache per sequence).
"""

from __future__ import annotations

from dataclasses import dataclass

from sparq_sim import capacity
from sparq_sim.methods import get_method
from sparq_sim.predict import Totals
from sparq_sim.traffic import weight_bytes
from sparq_sim.workload import Workload


@dataclass(frozen=True)
class MethodResult:
    method: str
    settings: dict
    batch: int
    attention: Totals
    step: Totals
    kv_bytes_per_sequence: int
    fixed_bytes: int             # per model (e.g. Loki's projections), beside the weights
    weights_bytes: float
    max_batch: int

    @property
    def kv_memory_bytes(self) -> int:
        """KV memory of the whole batch (plus per-model method state)."""
        return self.kv_bytes_per_sequence * self.batch + self.fixed_bytes

    @property
    def memory_bytes(self) -> float:
        """Weights plus KV memory: what the device must hold (the reserve aside)."""
        return self.weights_bytes + self.kv_memory_bytes

    @property
    def tokens_per_s(self) -> float:
        return self.batch / self.step.time_s if self.step.time_s > 0 else 0.0


def evaluate(name: str, settings: dict, w: Workload, device, timer=None,
             reserve_fraction: float = capacity.RESERVE_FRACTION) -> MethodResult:
    """Time and size method `name` with (already checked) `settings` for workload `w`."""
    from sparq_sim.implementations import get_implementation
    from sparq_sim.timing import get_timer

    method = get_method(name)
    timer = timer or get_timer("roofline", device)
    attention = timer.time_phases(method.attention_phases(w, settings))
    other = timer.time_phases(get_implementation("ideal").other_phases(w, device))
    ideal = method.ideal_bytes(w, settings)
    per_seq = method.kv_bytes_per_sequence(w.model, w.seq, w.kv_dtype, settings)
    fixed = method.fixed_bytes(w.model, w.kv_dtype, settings)
    cap = device.capacity_bytes.value
    weights = capacity.weights_bytes(w.model, w.weight_dtype)
    limit = capacity.max_batch(cap, weights + fixed, reserve_fraction * cap, per_seq)
    return MethodResult(method.name, dict(settings), w.batch, Totals.of(attention, ideal),
                        Totals.of(attention + other, ideal + weight_bytes(w)), per_seq, fixed, weights, limit)


def workload_for(model, seq: int, batch: int, kv_dtype: str = "float16", weight_dtype: str = "float16") -> Workload:
    """A workload carrying the shape, S, batch and dtypes (SparQ's own r and k come from its settings)."""
    return Workload.build(model, seq, batch=batch, kv_dtype=kv_dtype, weight_dtype=weight_dtype)
