"""The hardware library: one TOML file per device, each number with its source, and its loader.

The structural cost model takes a device's own physics from here (compute units and clock,
DRAM latency, last-level cache size and bandwidth, launch, CUDA-graph replay and host dispatch
costs), never from another device's measurements.

Every number is an inline table ``{ value = ..., basis = "...", source = "..." }`` where basis
says how it is known: datasheet, measured, derived (computed from other documented figures),
fitted (from measurements, by sparq-sim's calibration) or assumed (a typical figure, to be
replaced by a measurement). Sections the core does not read (``[dram]`` for the simulator,
``[calibration]``) are kept in ``Device.raw`` for the modules that own them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from sparq_sim import tomlfile
from sparq_sim.errors import UserError

HERE = Path(__file__).resolve().parent
BASES = ("datasheet", "measured", "derived", "fitted", "assumed")
KINDS = ("gpu", "cpu")
DTYPES = ("float32", "float16", "bfloat16", "float8", "int8")
# Where a device has no unit for a dtype, arithmetic falls back to the wider format
# (weights are dequantised on the fly).
PEAK_FALLBACK = {"float8": "float16", "int8": "float16", "bfloat16": "float32", "float16": "float32"}

# field -> (path in the file, lower bound, upper bound): plausible bounds for any device, so a slip
# of a few orders of magnitude (or inf, nan) is caught. The lower bound is exclusive, the upper
# inclusive; launch_s may be 0.
REQUIRED_FIGURES = {
    "bandwidth_Bps": (("memory", "bandwidth_Bps"), 1e8, 1e15),               # 0.1 GB/s .. 1 PB/s
    "achievable_fraction": (("memory", "achievable_fraction"), 0.01, 1),
    "capacity_bytes": (("memory", "capacity_bytes"), 1e6, 1e15),             # 1 MB .. 1 PB
    "channels": (("memory", "channels"), 0, 65536),
    "granularity_bytes": (("memory", "access_granularity_bytes"), 0, 4096),
    "llc_bytes": (("cache", "llc_bytes"), 0, 1e11),
    "compute_units": (("compute", "units"), 0, 1e6),
    "launch_s": (("overheads", "launch_s"), -1e-300, 0.1),
    # physics the structural cost model derives device behaviour from (sparq_sim.calibration.model)
    "clock_hz": (("compute", "clock_hz"), 1e8, 1e10),
    "llc_bandwidth_Bps": (("cache", "bandwidth_Bps"), 1e9, 1e15),
    "dram_latency_s": (("dram", "idle_latency_s"), 1e-9, 1e-5),
    "host_op_s": (("host", "op_dispatch_s"), 1e-8, 1e-3),
}
# only GPUs replay CUDA graphs
GPU_FIGURES = {
    "graph_kernel_s": (("overheads", "graph_kernel_s"), 1e-8, 1e-4),
}
PEAK_FLOPS_BOUNDS = (1e6, 1e18)   # flop/s: a microcontroller .. far beyond any accelerator
# Keys each section may hold (a misspelt key is an error, not a silently ignored figure).
# [dram] belongs to the simulator (sparq_sim.simulator.config checks it) and [calibration] holds
# any measured or fitted figures; both are kept in Device.raw.
SECTIONS = {
    "": {"name", "description", "kind", "aliases", "memory", "cache", "compute", "overheads", "dram",
         "calibration", "host", "link"},
    "memory": {"technology", "bandwidth_Bps", "achievable_fraction", "capacity_bytes", "channels",
               "access_granularity_bytes"},
    "cache": {"llc_bytes", "bandwidth_Bps"},
    "compute": {"units", "clock_hz", "peak_flops"},
    "overheads": {"launch_s", "graph_kernel_s"},
    "host": {"op_dispatch_s"},
    "link": {"technology", "bandwidth_Bps", "latency_s"},
}


def _check_keys(data: dict, path: str) -> None:
    """UserError naming the first key that no section of the schema knows."""
    for section, known in SECTIONS.items():
        table = data if not section else data.get(section, {})
        if not isinstance(table, dict):
            raise UserError(f"hardware file {path}: field {section} must be a table")
        unknown = sorted(set(table) - known)
        if unknown:
            where = f"section [{section}]" if section else "the top level"
            raise UserError(f"hardware file {path}: unknown field {unknown[0]!r} in {where} "
                            f"(known: {', '.join(sorted(known))})")


@dataclass(frozen=True)
class Figure:
    """A number with where it comes from."""

    value: float
    basis: str
    source: str

    def to_dict(self) -> dict:
        return {"value": self.value, "basis": self.basis, "source": self.source}


@dataclass(frozen=True)
class Device:
    """A device's memory system, compute rates and fixed costs, as the models need them."""

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
    peak_flops: dict = field(default_factory=dict)
    path: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

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
        out = {name: getattr(self, name) for name in REQUIRED_FIGURES}
        out.update({name: getattr(self, name) for name in GPU_FIGURES if getattr(self, name) is not None})
        out.update({f"peak_flops.{k}": v for k, v in self.peak_flops.items()})
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "kind": self.kind,
                "technology": self.technology, "path": self.path,
                **{k: v.to_dict() for k, v in self.figures().items()}}


def _figure(table: dict, where: str, path: str, low, high) -> Figure:
    def bad(problem):
        return UserError(f"hardware file {path}: field {where}: {problem}")

    if not isinstance(table, dict):
        raise bad("expected a table { value = ..., basis = ..., source = ... }")
    value = table.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(f"value must be a number, got {value!r}")
    if not math.isfinite(value):
        raise bad(f"value must be a finite number, got {value!r}")
    if low is not None and not value > low:
        raise bad(f"value must be greater than {low}, got {value!r}")
    if high is not None and value > high:
        raise bad(f"value must be at most {high}, got {value!r}")
    basis = table.get("basis")
    if basis not in BASES:
        raise bad(f"basis must be one of {', '.join(BASES)}, got {basis!r}")
    source = table.get("source")
    if not isinstance(source, str) or not source.strip():
        raise bad("source is missing: every number needs a source")
    extra = set(table) - {"value", "basis", "source"}
    if extra:
        raise bad(f"unknown keys {', '.join(sorted(extra))}")
    return Figure(float(value), basis, source)


def _lookup(data: dict, keys: tuple[str, ...], path: str):
    node = data
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise UserError(f"hardware file {path}: field {'.'.join(keys[:depth + 1])} is missing")
        node = node[key]
    return node


def parse_device(data: dict, path: str) -> Device:
    """Validate a parsed hardware file and build the Device; errors name the bad field."""
    def text(key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"hardware file {path}: field {key} must be a non-empty string")
        return value.strip()

    _check_keys(data, path)
    name, kind = text("name"), text("kind")
    if kind not in KINDS:
        raise UserError(f"hardware file {path}: field kind must be one of {', '.join(KINDS)}, got {kind!r}")
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise UserError(f"hardware file {path}: field aliases must be a list of strings")
    technology = _lookup(data, ("memory", "technology"), path)
    if not isinstance(technology, str):
        raise UserError(f"hardware file {path}: field memory.technology must be a string")
    figures = {attr: _figure(_lookup(data, keys, path), ".".join(keys), path, low, high)
               for attr, (keys, low, high) in REQUIRED_FIGURES.items()}
    if kind == "gpu":
        figures.update({attr: _figure(_lookup(data, keys, path), ".".join(keys), path, low, high)
                        for attr, (keys, low, high) in GPU_FIGURES.items()})
    peaks_table = _lookup(data, ("compute", "peak_flops"), path)
    if not isinstance(peaks_table, dict):
        raise UserError(f"hardware file {path}: field compute.peak_flops must be a table")
    peaks = {}
    for dtype, table in peaks_table.items():
        if dtype not in DTYPES:
            raise UserError(f"hardware file {path}: field compute.peak_flops.{dtype}: unknown dtype "
                            f"(choose from {', '.join(DTYPES)})")
        peaks[dtype] = _figure(table, f"compute.peak_flops.{dtype}", path, *PEAK_FLOPS_BOUNDS)
    if "float32" not in peaks:
        raise UserError(f"hardware file {path}: field compute.peak_flops.float32 is missing")
    for attr in ("channels", "compute_units"):
        if figures[attr].value != int(figures[attr].value):
            raise UserError(f"hardware file {path}: field {'.'.join(REQUIRED_FIGURES[attr][0])} must be "
                            f"a whole number, got {figures[attr].value!r}")
    calibration = data.get("calibration", {})
    if not isinstance(calibration, dict):
        raise UserError(f"hardware file {path}: field calibration must be a table")
    for key, table in calibration.items():
        _figure(table, f"calibration.{key}", path, None, None)
    granularity = figures["granularity_bytes"].value
    if granularity != int(granularity) or int(granularity) & (int(granularity) - 1):
        raise UserError(f"hardware file {path}: field memory.access_granularity_bytes must be a power of two")
    return Device(name=name, description=str(data.get("description", name)), kind=kind,
                  aliases=tuple(a.lower() for a in aliases), technology=technology,
                  peak_flops=peaks, path=path, raw=data, **figures)


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
    # --- "local": this machine's profile, written by `sparq-sim measure` ---
    if key == "local":
        from sparq_sim.simulator.local import local_profile_path
        local = local_profile_path()
        if not local.is_file():
            raise UserError(f"no local hardware profile at {local}: run `sparq-sim measure` first")
        return load_file(local)
    # --- end of the local hook ---
    exact = HERE / f"{key}.toml"
    if exact.is_file():
        return load_file(exact)
    for path in library_files():
        try:
            aliases = tomlfile.read(path, "hardware file").get("aliases", [])
        except UserError:
            continue
        if key in [str(a).lower() for a in aliases]:
            return load_file(path)
    names = ", ".join(p.stem for p in library_files())
    raise UserError(f"unknown hardware {name_or_path!r}: choose from {names}, or give a path to a .toml file")
