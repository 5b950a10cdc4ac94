"""What a timer says about one phase."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sparq_sim.registry import Choice


class Bound(Choice):
    """Which of a phase's three costs is the largest."""

    MEMORY = "memory"
    COMPUTE = "compute"
    OVERHEAD = "overhead"


@dataclass(frozen=True)
class PhaseTime:
    """Bytes and time of one phase, and what bounds it (memory, compute or overhead)."""

    name: str
    part: str               # a traffic.Part: "attention" or "other"
    requested_bytes: float  # what the algorithm asks for
    moved_bytes: float      # what the memory system transfers
    ideal_bytes: float      # requested bytes that the method's traffic formulas (docs/method.md) count
    memory_s: float
    compute_s: float
    overhead_s: float
    time_s: float
    bound: Bound

    def to_dict(self) -> dict:
        return asdict(self)


def classify(memory_s: float, compute_s: float, overhead_s: float) -> Bound:
    """Name the largest of the three costs (the first of equals, in this order)."""
    costs = {Bound.MEMORY: memory_s, Bound.COMPUTE: compute_s, Bound.OVERHEAD: overhead_s}
    return max(costs, key=costs.get)
