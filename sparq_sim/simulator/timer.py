"""SimulatedTimer: phases timed by the DRAM simulator (``predict --timing sim``).

Memory time and moved bytes come from simulating each access of a phase (slice-and-scale, see
docs/simulator.md); compute and fixed costs are the roofline's (RooflineTimer is reused for
them). A phase's accesses are simulated one after another and their times added.

Results are cached in-process by access signature (pattern, count, size, picks, row_bytes,
write; not the tensor's name) and DRAM configuration, so K and V streams of the same shape, or
repeated predictions, are simulated once. Deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

from sparq_sim.simulator.config import DramConfig, dram_config
from sparq_sim.timing.result import PhaseTime, classify
from sparq_sim.timing.roofline import RooflineTimer
from sparq_sim.traffic import Pattern

SLICE_REQUESTS = 4000   # requests simulated per access (the slice)
HEAD_FRACTION = 0.2     # first part of the slice: fill latency, excluded from the steady rate
TAIL_FRACTION = 0.8     # last part: drain (channels run dry one by one), excluded too
MLP_TURNS = 3           # the slice should see the in-flight window turn over this many times


@dataclass(frozen=True)
class AccessResult:
    """What the simulator says about one access pattern, for the whole pattern."""

    requested_bytes: float
    moved_bytes: float
    time_s: float
    row_hit_rate: float
    utilisation: float        # data-bus busy fraction over all channels of the device
    slice_requests: int
    slice_channels: int
    scaled: bool              # True when the pattern was longer than the slice

    @property
    def achieved_Bps(self) -> float:
        return self.moved_bytes / self.time_s if self.time_s > 0 else 0.0

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["achieved_Bps"] = self.achieved_Bps
        return out


def subset_channels(cfg: DramConfig, est_requests: float, target: int) -> int:
    """How many channels the slice simulates: all of them for short patterns, otherwise few enough
    that the slice's share of the in-flight window turns over MLP_TURNS times."""
    if est_requests <= target:
        return cfg.channels
    n = math.ceil(cfg.channels * target / (MLP_TURNS * cfg.max_requests))
    return max(1, min(cfg.channels, n))


@lru_cache(maxsize=4096)
def simulate_access(cfg: DramConfig, access, seed: int = 0, target: int = SLICE_REQUESTS) -> AccessResult:
    """Simulate a slice of `access` on `cfg` and scale it to the whole pattern."""
    from sparq_sim.simulator import engine
    from sparq_sim.simulator.patterns import make_slice

    g = cfg.request_bytes
    est = access.moved_bytes(g) / g
    n_sub = subset_channels(cfg, est, target)
    sl = make_slice(access, cfg, n_sub, target, seed)
    kept = len(sl.channel)
    if kept == 0:
        return AccessResult(access.requested_bytes(), sl.total_requests * g, 0.0, 0.0, 0.0, 0, n_sub, False)
    share = kept / sl.generated_requests
    max_req = max(1, round(cfg.max_requests * share))
    max_dem = max(1, round(cfg.max_demand * share))
    limited = cfg.max_pieces < cfg.max_requests
    lines_per_piece = sl.generated_requests / max(1, sl.generated_pieces) if access.pattern != Pattern.STREAM \
        else math.ceil(access.size / g)
    pieces = cfg.max_pieces / (1.0 + cfg.piece_line_cost * (lines_per_piece - 1.0))
    res = engine.simulate(cfg, sl.channel, sl.bank, sl.row, sl.demand, sl.write, n_sub, max_req, max_dem,
                          sl.piece if limited else None,
                          max(1, round(pieces * share)) if limited else None)
    comp = res.completions
    sub_total = sl.total_requests * share
    if sl.complete or sub_total <= kept:
        time_s = res.end
    else:
        head = max(1, int(HEAD_FRACTION * kept))
        tail = max(head + 1, int(TAIL_FRACTION * kept))
        span = comp[tail - 1] - comp[head - 1]
        rate = (tail - head) / span if span > 0 else float("inf")
        time_s = float(comp[head - 1] + (sub_total - head) / rate)
    moved = float(sl.total_requests * g)
    utilisation = moved / time_s / (cfg.channels * cfg.channel_Bps) if time_s > 0 else 0.0
    return AccessResult(float(access.requested_bytes()), moved, time_s,
                        res.row_hit_rate, utilisation, kept, n_sub, not sl.complete)


@dataclass(frozen=True)
class PhaseStats:
    """Per-phase simulator statistics for `sparq-sim simulate`."""

    name: str
    requested_bytes: float
    moved_bytes: float
    memory_s: float
    row_hit_rate: float
    utilisation: float
    accesses: tuple  # (Access, AccessResult) pairs

    @property
    def achieved_Bps(self) -> float:
        return self.moved_bytes / self.memory_s if self.memory_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "requested_bytes": self.requested_bytes, "moved_bytes": self.moved_bytes,
                "memory_s": self.memory_s, "achieved_Bps": self.achieved_Bps,
                "row_hit_rate": self.row_hit_rate, "channel_utilisation": self.utilisation,
                "accesses": [{"what": a.what, "pattern": a.pattern, "count": a.count, "size": a.size,
                              "picks": a.picks, "row_bytes": a.row_bytes, "write": a.write, **r.to_dict()}
                             for a, r in self.accesses]}


class SimulatedTimer:
    name = "sim"

    def __init__(self, device, seed: int = 0, slice_requests: int = SLICE_REQUESTS):
        self.device = device
        self.config = dram_config(device)
        self.seed = int(seed)
        self.slice_requests = int(slice_requests)
        self._roofline = RooflineTimer(device)

    def access_result(self, access) -> AccessResult:
        key = dataclasses.replace(access, what="")
        return simulate_access(self.config, key, self.seed, self.slice_requests)

    def phase_stats(self, phase) -> PhaseStats:
        pairs = tuple((a, self.access_result(a)) for a in phase.accesses)
        moved = sum(r.moved_bytes for _, r in pairs)
        memory_s = sum(r.time_s for _, r in pairs)
        reqs = sum(r.moved_bytes for _, r in pairs)
        hit = sum(r.row_hit_rate * r.moved_bytes for _, r in pairs) / reqs if reqs else 0.0
        util = sum(r.utilisation * r.time_s for _, r in pairs) / memory_s if memory_s else 0.0
        return PhaseStats(phase.name, float(phase.requested_bytes()), moved, memory_s, hit, util, pairs)

    def time_phase(self, phase, stats: PhaseStats | None = None) -> PhaseTime:
        stats = stats or self.phase_stats(phase)
        base = self._roofline.time_phase(phase)
        memory_s = stats.memory_s
        bound = classify(memory_s, base.compute_s, base.overhead_s)
        return PhaseTime(phase.name, phase.part, base.requested_bytes, stats.moved_bytes, base.ideal_bytes,
                         memory_s, base.compute_s, base.overhead_s,
                         max(memory_s, base.compute_s) + base.overhead_s, bound)

    def time_phases(self, phases) -> list[PhaseTime]:
        return [self.time_phase(p) for p in phases]
