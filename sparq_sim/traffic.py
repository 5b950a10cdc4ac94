"""Memory traffic of a decoding step: access patterns, phases, and the ideal byte formulas.

An implementation model (``sparq_sim.implementations``) describes each kernel phase as a list of
``Access`` patterns. Two counts come out of them:

* requested bytes: what the algorithm asks for, element by element; for the ideal
  implementation this equals the method's traffic formulas (docs/method.md) (``ideal_attention_bytes``);
* moved bytes: what the memory system must transfer, with every access rounded up to the
  device's access granularity (32-byte sectors on GPUs, 64-byte lines on CPUs). This is why a
  few scattered components of a position-major key row cost almost the whole row.

Timers (roofline, simulator, calibrated) turn the same phases into time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from sparq_sim.registry import Choice
from sparq_sim.workload import Workload, ideal_attention_elements


class Pattern(Choice):
    """How an access lays its bytes out in memory."""

    STREAM = "stream"            # `count` contiguous runs of `size` bytes each
    GATHER = "gather"            # `count` pieces of `size` bytes at unrelated addresses (row gathers)
    SPARSE_ROWS = "sparse_rows"  # `count` rows of `row_bytes`; `picks` random elements of `size` bytes each


class Part(Choice):
    """Which total of a step a phase counts towards."""

    ATTENTION = "attention"
    OTHER = "other"              # weights, norms, everything outside attention


STREAM, GATHER, SPARSE_ROWS = Pattern.STREAM, Pattern.GATHER, Pattern.SPARSE_ROWS
PATTERNS = tuple(Pattern)


@lru_cache(maxsize=None)
def _mean_units_touched(size: int, stride: int, unit: int) -> float:
    """Mean units (sectors/lines) touched by a piece of `size` bytes placed at multiples of `stride`."""
    step = math.gcd(stride, unit) if stride else unit
    offsets = range(0, unit, step)
    return sum(math.ceil((o + size) / unit) for o in offsets) / len(offsets)


@lru_cache(maxsize=None)
def _expected_units_hit(n_elements: int, per_unit: int, picks: int) -> float:
    """Expected distinct units touched when `picks` of `n_elements` are chosen at random.

    The row has n_elements/per_unit units; a unit is missed when none of its elements is picked:
    P(miss) = C(n - m, picks) / C(n, picks).
    """
    units = n_elements / per_unit
    if picks >= n_elements:
        return units
    if n_elements - per_unit < picks:
        return units
    log_miss = (math.lgamma(n_elements - per_unit + 1) - math.lgamma(n_elements - per_unit - picks + 1)
                - math.lgamma(n_elements + 1) + math.lgamma(n_elements - picks + 1))
    return units * (1.0 - math.exp(log_miss))


@dataclass(frozen=True)
class Access:
    """One memory access pattern of a phase (reads unless ``write``)."""

    pattern: Pattern    # a Pattern or its name
    count: int          # runs (stream), pieces (gather) or rows (sparse_rows)
    size: int           # bytes per run / piece / element picked
    picks: int = 0      # sparse_rows: elements picked per row
    row_bytes: int = 0  # sparse_rows: bytes per row; gather: address stride of pieces (0 = aligned)
    write: bool = False
    what: str = ""      # which tensor, for reports ("K", "K_t", "V", "q", ...)

    def __post_init__(self):
        try:
            object.__setattr__(self, "pattern", Pattern(self.pattern))
        except ValueError:
            raise ValueError(f"unknown access pattern {self.pattern!r}") from None
        if self.pattern == SPARSE_ROWS and (self.picks < 1 or self.row_bytes < self.size):
            raise ValueError("sparse_rows needs picks >= 1 and row_bytes >= size")

    def requested_bytes(self) -> int:
        """Bytes the algorithm asks for."""
        if self.pattern == SPARSE_ROWS:
            return self.count * self.picks * self.size
        return self.count * self.size

    def moved_bytes(self, granularity: int) -> float:
        """Bytes the memory system transfers when every access is rounded to `granularity`."""
        g = granularity
        if self.pattern == STREAM:
            return self.count * math.ceil(self.size / g) * g
        if self.pattern == GATHER:
            stride = self.row_bytes or self.size
            return self.count * _mean_units_touched(self.size, stride, g) * g
        per_unit = max(1, g // self.size)
        n_elements = self.row_bytes // self.size
        if self.row_bytes % g or g % self.size:
            # Rows not aligned to the unit: bound by the whole row, at most one unit per pick.
            units = min(_mean_units_touched(self.row_bytes, self.row_bytes, g), self.picks)
        else:
            units = _expected_units_hit(n_elements, per_unit, self.picks)
        return self.count * units * g

    def scaled(self, factor: int) -> "Access":
        """The same pattern repeated `factor` times (e.g. over layers)."""
        return Access(self.pattern, self.count * factor, self.size, self.picks, self.row_bytes,
                      self.write, self.what)


@dataclass(frozen=True)
class Phase:
    """One step of a kernel: its memory accesses, arithmetic and launches, for the whole step."""

    name: str
    accesses: tuple[Access, ...] = ()
    flops: float = 0.0
    flop_dtype: str = "float32"   # which peak rate applies
    launches: int = 0             # kernel launches (GPU) or parallel regions (CPU)
    fixed_s: float = 0.0          # other fixed cost, seconds
    part: Part = Part.ATTENTION   # which step total it counts towards
    in_formula: bool = True       # False for traffic the method's traffic formulas (docs/method.md) leave out (cache appends)

    def requested_bytes(self) -> int:
        return sum(a.requested_bytes() for a in self.accesses)

    def moved_bytes(self, granularity: int) -> float:
        return sum(a.moved_bytes(granularity) for a in self.accesses)


def ideal_attention_bytes(w: Workload, method: str) -> int:
    """Ideal attention bytes: elements times bytes per KV element."""
    return ideal_attention_elements(w, method) * w.kv_bytes


def weight_bytes(w: Workload) -> float:
    """Bytes of weights read once per decoding step (shared by the whole batch)."""
    return w.model.params * w.weight_bytes
