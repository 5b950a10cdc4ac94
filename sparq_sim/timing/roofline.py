"""Analytic roofline: a phase takes the larger of bytes over bandwidth and work over peak rate,
plus its fixed costs (launches times the device's launch cost, and any other fixed time).

Bytes are the moved bytes (rounded to the device's access granularity); bandwidth is the
datasheet peak times the device's achievable fraction.
"""

from __future__ import annotations

from sparq_sim.timing.result import PhaseTime, classify


class RooflineTimer:
    name = "roofline"

    def __init__(self, device):
        self.device = device

    def time_phase(self, phase) -> PhaseTime:
        d = self.device
        moved = phase.moved_bytes(d.granularity)
        requested = phase.requested_bytes()
        memory_s = moved / d.sustained_bandwidth
        compute_s = phase.flops / d.peak(phase.flop_dtype)
        overhead_s = phase.launches * d.launch_s.value + phase.fixed_s
        bound = classify(memory_s, compute_s, overhead_s)
        return PhaseTime(phase.name, phase.part, requested, moved,
                         requested if phase.in_formula else 0.0,
                         memory_s, compute_s, overhead_s, max(memory_s, compute_s) + overhead_s, bound)

    def time_phases(self, phases) -> list[PhaseTime]:
        return [self.time_phase(p) for p in phases]
