"""What a timer says about one phase."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PhaseTime:
    """Bytes and time of one phase, and what bounds it (memory, compute or overhead)."""

    name: str
    part: str               # "attention" or "other"
    requested_bytes: float  # what the algorithm asks for
    moved_bytes: float      # what the memory system transfers
    ideal_bytes: float      # requested bytes that the method's traffic formulas (docs/method.md) count
    memory_s: float
    compute_s: float
    overhead_s: float
    time_s: float
    bound: str

    def to_dict(self) -> dict:
        return asdict(self)


def classify(memory_s: float, compute_s: float, overhead_s: float) -> str:
    """Name the largest of the three costs."""
    costs = {"memory": memory_s, "compute": compute_s, "overhead": overhead_s}
    return max(costs, key=costs.get)
