"""The hardware library: one TOML file per device, each number with its source, and its loader.

The structural cost model takes a device's own physics from here (compute units and clock,
DRAM latency, last-level cache size and bandwidth, launch, CUDA-graph replay and host dispatch
costs), never from another device's measurements.

Every number is an inline table ``{ value = ..., basis = "...", source = "..." }`` where basis
says how it is known: datasheet, measured, derived (computed from other documented figures),
fitted (from measurements, by sparq-sim's calibration) or assumed (a typical figure, to be
replaced by a measurement). ``SECTIONS`` is the file's schema (sparq_sim.schema): every field
with its unit and plausible range; a key it does not know is an error. ``Device`` holds every
section typed: the figures the cost model reads as fields, ``memory``, ``cache``, ``compute``,
``overheads`` and ``host`` as views of them, ``dram`` (the DRAM simulator's parameters),
``link`` (tensor parallelism, optional) and ``calibration`` (measured or fitted extras). A CPU's
``compute.core`` (optional, one of ``CPU_CORES``) names its core microarchitecture: figures of an
implementation measured in core cycles or bounded by the core's out-of-order window are kept per
core and looked up by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sparq_sim import tomlfile
from sparq_sim.errors import UserError
from sparq_sim.schema import BASES, Basis, Figure  # noqa: F401  (re-exported: the figures of a Device)
from sparq_sim.schema import FigureField, Flag, Section, Strings, Table, Text, read

HERE = Path(__file__).resolve().parent
KINDS = ("gpu", "cpu")
# CPU core microarchitectures a hardware file may name (compute.core): code whose cost is counted in
# core cycles or bounded by the core's out-of-order window (an implementation's measured figures)
# is looked up by it; machine.cpu_core() names this machine's.
CPU_CORES = ("zen3", "zen4", "sapphire-rapids")
# [calibration] extra of a CPU: PyTorch's batched matrix-vector read rate measured on it (B/s), the
# reference of the calibrated model's BLAS families
FRAMEWORK_MATMUL = "framework_matmul_Bps"
DTYPES = ("float32", "float16", "bfloat16", "float8", "int8")
# Where a device has no unit for a dtype, arithmetic falls back to the wider format
# (weights are dequantised on the fly).
PEAK_FALLBACK = {"float8": "float16", "int8": "float16", "bfloat16": "float32", "float16": "float32"}
LOCAL_NAME = "local"


def local_profile_path() -> Path:
    """Where `sparq-sim measure` writes this machine's hardware file (``--hw local`` reads it)."""
    from sparq_sim.machine import cache_dir   # not on every load: it imports platform
    return cache_dir() / f"{LOCAL_NAME}.toml"


# --------------------------------------------------------------------------- sections, typed
# (NamedTuples: cheap to define on the prediction path, immutable, typed)

class Memory(NamedTuple):
    technology: str
    bandwidth_Bps: Figure
    achievable_fraction: Figure
    capacity_bytes: Figure
    channels: Figure
    access_granularity_bytes: Figure


class Cache(NamedTuple):
    llc_bytes: Figure
    bandwidth_Bps: Figure


class Compute(NamedTuple):
    units: Figure
    clock_hz: Figure
    peak_flops: dict          # dtype -> Figure
    max_warps_per_unit: Figure | None = None    # GPUs only: resident warps one SM holds
    core: str | None = None                      # CPUs: the core's microarchitecture (CPU_CORES)
    load_store_units: Figure | None = None      # GPUs only: load/store lanes of one SM


class Overheads(NamedTuple):
    launch_s: Figure
    graph_kernel_s: Figure | None = None    # GPUs only: one kernel of a replayed CUDA graph


class Host(NamedTuple):
    op_dispatch_s: Figure


class Dram(NamedTuple):
    """The DRAM simulator's parameters (sparq_sim.simulator.config reads them; docs/simulator.md).
    Only the idle latency is required here: the cost model needs it, the simulator the rest."""

    standard: str | None = None             # default: memory.technology
    channels: Figure | None = None          # independently scheduled channels
    interleave_bytes: Figure | None = None
    idle_latency_s: Figure | None = None    # required by the schema
    outstanding_per_unit: Figure | None = None
    demand_per_unit: Figure | None = None
    prefetch_after_lines: Figure | None = None
    pieces_per_unit: Figure | None = None
    piece_line_cost: Figure | None = None
    channel_bandwidth_Bps: Figure | None = None
    channel_hash: bool | None = None
    banks: Figure | None = None
    row_bytes: Figure | None = None

    def items(self) -> list[tuple[str, object]]:
        """(name, value) of the fields the file gives, in schema order."""
        return [(name, value) for name, value in zip(self._fields, self) if value is not None]

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, Figure) else v for k, v in self.items()}


class Link(NamedTuple):
    """Device-to-device link for tensor parallelism (sparq_sim.parallel)."""

    technology: str
    bandwidth_Bps: Figure       # one direction
    latency_s: Figure           # fixed cost per ring step

    def to_dict(self) -> dict:
        return {"technology": self.technology, "bandwidth_Bps": self.bandwidth_Bps.to_dict(),
                "latency_s": self.latency_s.to_dict()}


F = FigureField
# The hardware file. Lower bounds are exclusive unless low_inclusive, upper bounds inclusive.
DRAM_SECTION = Section({
    "standard": Text(required=False),
    "channels": F("channels", 0, 65536, whole=True, required=False),
    "interleave_bytes": F("bytes", 0, 1 << 24, whole=True, required=False,
                          doc="address interleave across channels"),
    "idle_latency_s": F("s", 1e-9, 1e-5, doc="unloaded load-to-use latency of a DRAM access"),
    "outstanding_per_unit": F("requests", 0, 1e6, required=False, doc="requests in flight per SM / core"),
    "demand_per_unit": F("requests", 0, 1e6, required=False, doc="CPU: demand misses in flight per core"),
    "prefetch_after_lines": F("lines", 0, 1e9, required=False,
                              doc="CPU: lines of a piece before the prefetcher covers the rest"),
    "pieces_per_unit": F("pieces", 0, 1e6, required=False, doc="CPU: one-line pieces in flight per core"),
    "piece_line_cost": F("1", 0, 1e3, low_inclusive=True, required=False,
                         doc="CPU: window share of each further line of a piece"),
    "channel_bandwidth_Bps": F("B/s", 1e6, 1e14, required=False, doc="per-channel rate"),
    "channel_hash": Flag(required=False),
    "banks": F("banks", 0, 1024, whole=True, required=False),
    "row_bytes": F("bytes", 0, 1 << 20, whole=True, required=False),
}, into=Dram)
SECTIONS = Section({
    "name": Text(),
    "description": Text(required=False),
    "kind": Text(choices=KINDS),
    "aliases": Strings(required=False),
    "memory": Section({
        "technology": Text(empty=True),
        "bandwidth_Bps": F("B/s", 1e8, 1e15),                       # 0.1 GB/s .. 1 PB/s
        "achievable_fraction": F("1", 0.01, 1),
        "capacity_bytes": F("bytes", 1e6, 1e15),                    # 1 MB .. 1 PB
        "channels": F("channels", 0, 65536, whole=True),
        "access_granularity_bytes": F("bytes", 0, 4096, power_of_two=True),
    }, into=Memory),
    "cache": Section({
        "llc_bytes": F("bytes", 0, 1e11),
        "bandwidth_Bps": F("B/s", 1e9, 1e15),
    }, into=Cache),
    "compute": Section({
        "units": F("SMs or cores", 0, 1e6, whole=True),
        "clock_hz": F("Hz", 1e8, 1e10),
        # flop/s: a microcontroller .. far beyond any accelerator
        "peak_flops": Table(F("flop/s", 1e6, 1e18), keys=DTYPES, what="dtype", needs=("float32",)),
        "max_warps_per_unit": F("warps", 0, 1024, whole=True, required=False,
                                doc="GPUs: resident warps per SM (its compute capability's limit)"),
        "load_store_units": F("lanes", 0, 1024, whole=True, required=False,
                              doc="GPUs: load/store lanes per SM (addresses its loads issue per cycle)"),
        "core": Text(CPU_CORES, required=False),                    # CPUs: the core's microarchitecture
    }, into=Compute),
    "overheads": Section({
        "launch_s": F("s", 0, 0.1, low_inclusive=True),
        "graph_kernel_s": F("s", 1e-8, 1e-4, required=False),
    }, into=Overheads),
    "host": Section({"op_dispatch_s": F("s", 1e-8, 1e-3)}, into=Host),
    "dram": DRAM_SECTION,
    "link": Section({
        "technology": Text(),
        "bandwidth_Bps": F("B/s", 0),
        "latency_s": F("s", 0, low_inclusive=True),
    }, into=Link, required=False),
    "calibration": Table(F(""), required=False),      # measured or fitted extras, any name
})
del F
# Device field -> where the file has it: the figures reports list, in order.
FIGURES = {
    "bandwidth_Bps": "memory.bandwidth_Bps", "achievable_fraction": "memory.achievable_fraction",
    "capacity_bytes": "memory.capacity_bytes", "channels": "memory.channels",
    "granularity_bytes": "memory.access_granularity_bytes", "llc_bytes": "cache.llc_bytes",
    "compute_units": "compute.units", "launch_s": "overheads.launch_s", "clock_hz": "compute.clock_hz",
    "llc_bandwidth_Bps": "cache.bandwidth_Bps", "dram_latency_s": "dram.idle_latency_s",
    "host_op_s": "host.op_dispatch_s", "graph_kernel_s": "overheads.graph_kernel_s",
    "max_warps_per_unit": "compute.max_warps_per_unit", "load_store_units": "compute.load_store_units",
}


@dataclass(frozen=True)
class Device:
    """A device's memory system, compute rates and fixed costs, as the models need them.

    The figures the cost model reads are fields (so a test or a calibration can replace one);
    ``memory``, ``cache``, ``compute``, ``overheads`` and ``host`` give the same figures by section.
    """

    name: str
    description: str
    kind: str
    aliases: tuple[str, ...]
    technology: str
    bandwidth_Bps: Figure
    achievable_fraction: Figure
    capacity_bytes: Figure
    channels: Figure
    granularity_bytes: Figure
    llc_bytes: Figure
    compute_units: Figure
    launch_s: Figure
    clock_hz: Figure
    llc_bandwidth_Bps: Figure
    dram_latency_s: Figure
    host_op_s: Figure
    graph_kernel_s: Figure | None = None
    max_warps_per_unit: Figure | None = None
    load_store_units: Figure | None = None
    core: str | None = None          # CPUs: the core's microarchitecture (CPU_CORES), where known
    peak_flops: dict = field(default_factory=dict)
    path: str = ""
    dram: Dram | None = None
    link: Link | None = None
    calibration: dict = field(default_factory=dict)     # name -> Figure

    @property
    def memory(self) -> Memory:
        return Memory(self.technology, self.bandwidth_Bps, self.achievable_fraction, self.capacity_bytes,
                      self.channels, self.granularity_bytes)

    @property
    def cache(self) -> Cache:
        return Cache(self.llc_bytes, self.llc_bandwidth_Bps)

    @property
    def compute(self) -> Compute:
        return Compute(self.compute_units, self.clock_hz, self.peak_flops, self.max_warps_per_unit, self.core,
                       self.load_store_units)

    @property
    def overheads(self) -> Overheads:
        return Overheads(self.launch_s, self.graph_kernel_s)

    @property
    def host(self) -> Host:
        return Host(self.host_op_s)

    @property
    def granularity(self) -> int:
        return int(self.granularity_bytes.value)

    @property
    def sustained_bandwidth(self) -> float:
        """Bandwidth a well-written streaming kernel reaches: datasheet peak times achievable fraction."""
        return self.bandwidth_Bps.value * self.achievable_fraction.value

    def peak(self, dtype: str) -> float:
        """Peak arithmetic rate for a dtype, falling back to wider formats the device has."""
        key = dtype
        while key not in self.peak_flops:
            if key not in PEAK_FALLBACK:
                raise UserError(f"device {self.name} has no peak rate for {dtype}")
            key = PEAK_FALLBACK[key]
        return self.peak_flops[key].value

    def figures(self) -> dict:
        """Every number with its source, keyed by its name in reports."""
        out = {name: getattr(self, name) for name in FIGURES if getattr(self, name) is not None}
        out.update({f"peak_flops.{k}": v for k, v in self.peak_flops.items()})
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "kind": self.kind,
                "technology": self.technology, "path": self.path,
                **{k: v.to_dict() for k, v in self.figures().items()}}


def parse_device(data: dict, path: str) -> Device:
    """Validate a parsed hardware file and build the Device; errors name the bad field."""
    d = read(SECTIONS, data, f"hardware file {path}")
    memory, cache, compute, overheads = d["memory"], d["cache"], d["compute"], d["overheads"]
    if d["kind"] == "gpu":
        for name, value in (("overheads.graph_kernel_s", overheads.graph_kernel_s),
                            ("compute.max_warps_per_unit", compute.max_warps_per_unit),
                            ("compute.load_store_units", compute.load_store_units)):
            if value is None:
                raise UserError(f"hardware file {path}: field {name} is missing")
    return Device(name=d["name"], description=d["description"] or d["name"], kind=d["kind"],
                  aliases=tuple(a.lower() for a in d["aliases"] or ()), technology=memory.technology,
                  bandwidth_Bps=memory.bandwidth_Bps, achievable_fraction=memory.achievable_fraction,
                  capacity_bytes=memory.capacity_bytes, channels=memory.channels,
                  granularity_bytes=memory.access_granularity_bytes, llc_bytes=cache.llc_bytes,
                  compute_units=compute.units, launch_s=overheads.launch_s, clock_hz=compute.clock_hz,
                  llc_bandwidth_Bps=cache.bandwidth_Bps, dram_latency_s=d["dram"].idle_latency_s,
                  host_op_s=d["host"].op_dispatch_s,
                  graph_kernel_s=overheads.graph_kernel_s if d["kind"] == "gpu" else None,
                  max_warps_per_unit=compute.max_warps_per_unit if d["kind"] == "gpu" else None,
                  load_store_units=compute.load_store_units if d["kind"] == "gpu" else None,
                  core=compute.core if d["kind"] == "cpu" else None, peak_flops=compute.peak_flops, path=path, dram=d["dram"], link=d["link"],
                  calibration=d["calibration"] or {})


def file_data(device: Device) -> dict:
    """The hardware-file tables of a Device (``parse_device``'s inverse): what a run writes so
    that its measurements can later be predicted with the physics of the machine they came from."""
    def figures(*pairs) -> dict:
        return {k: v.to_dict() for k, v in pairs if v is not None}

    d = device
    data = {
        "name": d.name, "description": d.description, "kind": d.kind, "aliases": list(d.aliases),
        "memory": {"technology": d.technology,
                   **figures(("bandwidth_Bps", d.bandwidth_Bps), ("achievable_fraction", d.achievable_fraction),
                             ("capacity_bytes", d.capacity_bytes), ("channels", d.channels),
                             ("access_granularity_bytes", d.granularity_bytes))},
        "cache": figures(("llc_bytes", d.llc_bytes), ("bandwidth_Bps", d.llc_bandwidth_Bps)),
        "compute": {**figures(("units", d.compute_units), ("clock_hz", d.clock_hz),
                              ("max_warps_per_unit", d.max_warps_per_unit),
                              ("load_store_units", d.load_store_units)),
                    **({"core": d.core} if d.core is not None else {}),
                    "peak_flops": {k: v.to_dict() for k, v in d.peak_flops.items()}},
        "overheads": figures(("launch_s", d.launch_s), ("graph_kernel_s", d.graph_kernel_s)),
        "host": figures(("op_dispatch_s", d.host_op_s)),
        "dram": d.dram.to_dict() if d.dram is not None else figures(("idle_latency_s", d.dram_latency_s)),
    }
    if d.link is not None:
        data["link"] = d.link.to_dict()
    if d.calibration:
        data["calibration"] = {k: v.to_dict() for k, v in d.calibration.items()}
    return data


def load_file(path: str | Path) -> Device:
    """Load and validate one hardware file."""
    return parse_device(tomlfile.read(path, "hardware file"), str(path))


def library_files() -> list[Path]:
    """The hardware files shipped with sparq-sim."""
    return sorted(HERE.glob("*.toml"))


def list_devices() -> list[Device]:
    """All shipped devices, validated."""
    return [load_file(p) for p in library_files()]


def load_device(name_or_path: str | Path) -> Device:
    """A shipped device by name or alias, or a user's file by path (anything ending in .toml)."""
    text = str(name_or_path).strip()
    if text.endswith(".toml") or "/" in text or Path(text).is_file():
        return load_file(text)
    key = text.lower()
    if key == "local":   # this machine's profile, written by `sparq-sim measure`
        local = local_profile_path()
        if not local.is_file():
            raise UserError(f"no local hardware profile at {local}: run `sparq-sim measure` first")
        return load_file(local)
    exact = HERE / f"{key}.toml"
    if exact.is_file():
        return load_file(exact)
    for path in library_files():
        try:
            data = tomlfile.read(path, "hardware file")
        except UserError:
            continue
        if key in [str(a).lower() for a in data.get("aliases", [])]:
            return parse_device(data, str(path))     # read once, not again by load_file
    names = ", ".join(p.stem for p in library_files())
    raise UserError(f"unknown hardware {name_or_path!r}: choose from {names}, or give a path to a .toml file")
