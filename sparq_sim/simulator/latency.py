"""How long one gathered row takes when many are in flight at once on a device's DRAM.

A thread that gathers rows one by one keeps a few in flight; many threads gathering together
load the channels, and each row waits longer (bank conflicts, queues at the data buses). The
DRAM simulator gives that from the device's own organisation: the steady time per row of a
random gather of rows of ``row_bytes`` with ``rows_in_flight`` rows outstanding across the
device, in seconds. Cached per (DRAM configuration, rows in flight, row size).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from sparq_sim.simulator.config import DramConfig, dram_config
from sparq_sim.traffic import Access, Pattern

ROWS_SIMULATED = 65536   # rows of the gather the steady rate is read from (sliced by the simulator)


@lru_cache(maxsize=256)
def _per_row(cfg: DramConfig, rows_in_flight: int, row_bytes: int) -> float:
    from sparq_sim.simulator.timer import simulate_access
    lines = max(1, -(-row_bytes // cfg.request_bytes))
    limited = dataclasses.replace(cfg, max_pieces=rows_in_flight, max_requests=rows_in_flight * lines,
                                  max_demand=rows_in_flight * lines, piece_line_cost=0.0)
    result = simulate_access(limited, Access(Pattern.GATHER, ROWS_SIMULATED, row_bytes, what="rows"))
    return rows_in_flight * row_bytes / result.achieved_Bps


def row_latency(device, rows_in_flight: int, row_bytes: int) -> float | None:
    """Seconds per gathered row with `rows_in_flight` outstanding on `device` (None for a device
    without a ``[dram]`` section)."""
    if getattr(device, "dram", None) is None:
        return None
    return _per_row(dram_config(device), max(1, int(rows_in_flight)), int(row_bytes))
