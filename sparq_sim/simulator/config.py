"""DRAM parameters of a device: its memory technology's standard plus its own ``[dram]`` section.

The standard (``dram_standards.toml``) gives organisation and timings per technology; the
device's ``[dram]`` section in its hardware file gives what the simulator schedules:

    [dram]
    standard = "HBM3"                 # optional, defaults to memory.technology
    channels = { value, basis, source }          # independently scheduled channels
    interleave_bytes = { ... }                   # address interleave across channels
    idle_latency_s = { ... }                     # unloaded load-to-use latency of a DRAM access
    outstanding_per_unit = { ... }               # requests in flight per SM / core
    demand_per_unit = { ... }                    # optional (CPU): demand misses per core (LFBs)
    prefetch_after_lines = { ... }               # optional (CPU): lines of a piece before the
                                                 # prefetcher covers the rest
    pieces_per_unit = { ... }                    # optional (CPU): one-line pieces (rows) in flight
                                                 # per core (the out-of-order window)
    piece_line_cost = { ... }                    # optional (CPU): window share of each further line
                                                 # of a piece: n-line pieces in flight =
                                                 # pieces / (1 + cost (n - 1))
    channel_bandwidth_Bps = { ... }              # optional: per-channel rate (default: the
                                                 # device's sustained bandwidth / channels)
    channel_hash = true                          # optional, XOR-fold address bits into the channel
    banks, row_bytes                             # optional overrides of the standard

Every number is ``{ value, basis, source }`` like the rest of the hardware file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sparq_sim import tomlfile
from sparq_sim.errors import UserError

STANDARDS_FILE = Path(__file__).resolve().parent / "dram_standards.toml"
BASES = ("datasheet", "measured", "derived", "fitted", "assumed")
# [dram] fields: key -> (lower bound, exclusive; upper bound, inclusive; must be a whole number).
# Plausible for any DRAM path, so a slip of orders of magnitude, inf or nan is caught.
DRAM_FIELDS = {
    "channels": (0, 65536, True),
    "interleave_bytes": (0, 1 << 24, True),
    "idle_latency_s": (1e-9, 1e-4, False),
    "outstanding_per_unit": (0, 1e6, False),
    "demand_per_unit": (0, 1e6, False),
    "prefetch_after_lines": (0, 1e9, False),
    "pieces_per_unit": (0, 1e6, False),
    "piece_line_cost": (-1e-300, 1e3, False),
    "channel_bandwidth_Bps": (1e6, 1e14, False),
    "banks": (0, 1024, True),
    "row_bytes": (0, 1 << 20, True),
}
DRAM_KEYS = set(DRAM_FIELDS) | {"standard", "channel_hash"}
TIMINGS = ("tCL", "tRCD", "tRP", "tRAS", "tRRD", "tFAW", "tWR", "tRFC", "tREFI")
ORG = ("bus_bits", "burst_length", "banks", "row_bytes")


def _number(table, where: str, path: str, positive: bool = True, bounds=None) -> float:
    if not isinstance(table, dict) or "value" not in table:
        raise UserError(f"{path}: field {where}: expected a table {{ value = ..., basis = ..., source = ... }}")
    value = table["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{path}: field {where}: value must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UserError(f"{path}: field {where}: value must be a finite number, got {value!r}")
    if bounds is not None:
        low, high, whole = bounds
        if not low < value <= high:
            raise UserError(f"{path}: field {where}: value must be above {low:g} and at most {high:g}, "
                            f"got {value!r}")
        if whole and value != int(value):
            raise UserError(f"{path}: field {where}: value must be a whole number, got {value!r}")
    extra = set(table) - {"value", "basis", "source"}
    if extra:
        raise UserError(f"{path}: field {where}: unknown keys {', '.join(sorted(extra))}")
    if positive and not value > 0:
        raise UserError(f"{path}: field {where}: value must be positive, got {value!r}")
    if not positive and value < 0:
        raise UserError(f"{path}: field {where}: value must not be negative, got {value!r}")
    if table.get("basis") not in BASES:
        raise UserError(f"{path}: field {where}: basis must be one of {', '.join(BASES)}, got {table.get('basis')!r}")
    source = table.get("source")
    if not isinstance(source, str) or not source.strip():
        raise UserError(f"{path}: field {where}: source is missing: every number needs a source")
    return float(value)


@lru_cache(maxsize=1)
def load_standards() -> dict:
    """Technology name -> {field: value in bytes / seconds}."""
    data = tomlfile.read(STANDARDS_FILE, "DRAM standards file")
    out = {}
    for name, table in data.items():
        entry = {}
        for key in ORG:
            entry[key] = _number(table.get(key), f"{name}.{key}", str(STANDARDS_FILE))
        for key in TIMINGS:
            entry[key] = _number(table.get(key), f"{name}.{key}", str(STANDARDS_FILE)) * 1e-9
        out[name] = entry
    return out


@dataclass(frozen=True)
class DramConfig:
    """Everything the engine needs, in bytes and seconds."""

    device: str
    kind: str
    standard: str
    channels: int
    banks: int
    row_bytes: int
    burst_bytes: int
    request_bytes: int        # access granularity of the device (sector / line)
    interleave_bytes: int
    channel_hash: bool
    channel_Bps: float        # data rate of one channel as the simulator serves it
    t_request: float          # bus time of one request
    fabric_latency: float     # idle latency outside the DRAM core (both directions)
    tCL: float
    tRCD: float
    tRP: float
    tRAS: float
    tRRD: float
    tFAW: float
    tWR: float
    max_requests: int         # requests in flight, whole device
    max_demand: int           # demand misses in flight (CPU line-fill buffers), whole device
    prefetch_after: int       # lines of a piece issued as demand before the prefetcher takes over
    max_pieces: int           # pieces (rows, runs) of one line in flight at once, whole device
    piece_line_cost: float    # c: pieces of n lines in flight = max_pieces / (1 + c (n - 1))
    sustained_Bps: float      # the device's configured sustainable bandwidth (for reports)

    @property
    def key(self) -> tuple:
        return tuple(getattr(self, f) for f in self.__dataclass_fields__)


def dram_config(device) -> DramConfig:
    """Build the DramConfig of a core Device (hardware file with a [dram] section)."""
    path = device.path or device.name
    section = device.raw.get("dram")
    if not isinstance(section, dict):
        raise UserError(f"hardware file {path}: no [dram] section: the simulator needs one (see docs/simulator.md)")
    standard_name = section.get("standard", device.technology)
    standards = load_standards()
    if not isinstance(standard_name, str) or standard_name not in standards:
        raise UserError(f"hardware file {path}: field dram.standard: unknown DRAM standard {standard_name!r} "
                        f"(known: {', '.join(standards)})")
    std = standards[standard_name]
    unknown = sorted(set(section) - DRAM_KEYS)
    if unknown:
        raise UserError(f"hardware file {path}: unknown field {unknown[0]!r} in section [dram] "
                        f"(known: {', '.join(sorted(DRAM_KEYS))})")

    def num(key, default=None, positive=True):
        if key not in section:
            if default is None:
                raise UserError(f"hardware file {path}: field dram.{key} is missing")
            return default
        return _number(section[key], f"dram.{key}", path, positive, DRAM_FIELDS[key])

    channels = int(num("channels"))
    banks = int(num("banks", std["banks"]))
    row_bytes = int(num("row_bytes", std["row_bytes"]))
    burst = int(std["bus_bits"] * std["burst_length"] / 8)
    request = max(device.granularity, burst)
    interleave = int(num("interleave_bytes"))
    if interleave % request:
        raise UserError(f"hardware file {path}: field dram.interleave_bytes must be a multiple of the "
                        f"access granularity {request}")
    channel_bps = num("channel_bandwidth_Bps", device.sustained_bandwidth / channels)
    units = device.compute_units.value
    max_requests = max(1, int(round(units * num("outstanding_per_unit"))))
    max_demand = max(1, int(round(units * num("demand_per_unit", max_requests / units))))
    prefetch_after = int(num("prefetch_after_lines", 10 ** 9))
    max_pieces = max(1, int(round(units * num("pieces_per_unit", max_requests / units))))
    t_request = request / channel_bps
    idle = num("idle_latency_s")
    fabric = idle - (std["tRCD"] + std["tCL"] + t_request)
    if fabric < 0:
        raise UserError(f"hardware file {path}: field dram.idle_latency_s is shorter than the DRAM's own "
                        f"tRCD + tCL + one transfer ({(std['tRCD'] + std['tCL'] + t_request) * 1e9:.1f} ns)")
    hash_flag = section.get("channel_hash", True)
    if not isinstance(hash_flag, bool):
        raise UserError(f"hardware file {path}: field dram.channel_hash must be true or false")
    return DramConfig(device=device.name, kind=device.kind, standard=standard_name, channels=channels,
                      banks=banks, row_bytes=row_bytes, burst_bytes=burst, request_bytes=request,
                      interleave_bytes=interleave, channel_hash=hash_flag, channel_Bps=channel_bps,
                      t_request=t_request, fabric_latency=fabric,
                      tCL=std["tCL"], tRCD=std["tRCD"], tRP=std["tRP"], tRAS=std["tRAS"], tRRD=std["tRRD"],
                      tFAW=std["tFAW"], tWR=std["tWR"], max_requests=max_requests,
                      max_demand=min(max_demand, max_requests), prefetch_after=max(1, prefetch_after),
                      max_pieces=max_pieces, piece_line_cost=num("piece_line_cost", 0.0, positive=False),
                      sustained_Bps=device.sustained_bandwidth)
