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

Every number is ``{ value, basis, source }`` like the rest of the hardware file; the section's
schema (units, ranges) is sparq_sim.hardware.DRAM_SECTION, the standards file's is ``STANDARD``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sparq_sim import tomlfile
from sparq_sim.errors import UserError
from sparq_sim.schema import FigureField, Section, Table, read

STANDARDS_FILE = Path(__file__).resolve().parent / "dram_standards.toml"
TIMINGS = ("tCL", "tRCD", "tRP", "tRAS", "tRRD", "tFAW", "tWR", "tRFC", "tREFI")
ORG = ("bus_bits", "burst_length", "banks", "row_bytes")
# The standards file: one table per technology, keyed as hardware files spell memory.technology.
STANDARD = Section({
    "bus_bits": FigureField("bits", 0, 1024, whole=True),
    "burst_length": FigureField("beats", 0, 64, whole=True),
    "banks": FigureField("banks", 0, 1024, whole=True),
    "row_bytes": FigureField("bytes", 0, 1 << 20, whole=True),
    **{t: FigureField("ns", 0, 1e6) for t in TIMINGS},
})
STANDARDS = Table(STANDARD, what="DRAM standard")


@lru_cache(maxsize=1)
def load_standards() -> dict:
    """Technology name -> {field: value in bytes / seconds}."""
    data = read(STANDARDS, tomlfile.read(STANDARDS_FILE, "DRAM standards file"),
                f"DRAM standards file {STANDARDS_FILE}")
    return {name: {**{k: table[k].value for k in ORG}, **{k: table[k].value * 1e-9 for k in TIMINGS}}
            for name, table in data.items()}


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
    """Build the DramConfig of a core Device from its [dram] section (checked when the file was
    read: sparq_sim.hardware.DRAM_SECTION) and its memory technology's standard."""
    path = device.path or device.name
    section = device.dram
    if section is None:
        raise UserError(f"hardware file {path}: no [dram] section: the simulator needs one (see docs/simulator.md)")
    standard_name = section.standard or device.technology
    standards = load_standards()
    if standard_name not in standards:
        raise UserError(f"hardware file {path}: field dram.standard: unknown DRAM standard {standard_name!r} "
                        f"(known: {', '.join(standards)})")
    std = standards[standard_name]

    def num(key, default=None):
        figure = getattr(section, key)
        if figure is None:
            if default is None:
                raise UserError(f"hardware file {path}: field dram.{key} is missing")
            return default
        return figure.value

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
    hash_flag = True if section.channel_hash is None else section.channel_hash
    return DramConfig(device=device.name, kind=device.kind, standard=standard_name, channels=channels,
                      banks=banks, row_bytes=row_bytes, burst_bytes=burst, request_bytes=request,
                      interleave_bytes=interleave, channel_hash=hash_flag, channel_Bps=channel_bps,
                      t_request=t_request, fabric_latency=fabric,
                      tCL=std["tCL"], tRCD=std["tRCD"], tRP=std["tRP"], tRAS=std["tRAS"], tRRD=std["tRRD"],
                      tFAW=std["tFAW"], tWR=std["tWR"], max_requests=max_requests,
                      max_demand=min(max_demand, max_requests), prefetch_after=max(1, prefetch_after),
                      max_pieces=max_pieces, piece_line_cost=num("piece_line_cost", 0.0),
                      sustained_Bps=device.sustained_bandwidth)
