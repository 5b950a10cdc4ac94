"""The implementation constants of the calibrated cost model, as typed data.

A constant describes an implementation (how its kernels are built), never a device: every
device-dependent quantity is a constant times a figure of the device's own hardware file
(sustained bandwidth, DRAM latency, compute units and clock, LLC bandwidth, launch and host
dispatch costs). That is what lets constants fitted on one device predict another.

``SPECS`` names every constant the model knows, with its unit, meaning, fitting bounds and what
an absent per-family entry means (a family without a row-parallel limit has no
``bytes_in_flight``: unlimited). ``Constants`` is a validated mapping: an unknown name (a typo)
is an error, never a term silently switched off.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from sparq_sim.errors import UserError


@dataclass(frozen=True)
class Spec:
    """One constant (or family of constants ``prefix.<family>``)."""

    unit: str
    meaning: str
    initial: float
    low: float
    high: float
    per: str = ""              # "" (one value), "family" or "kernel": the name takes a suffix
    absent: float | None = None   # value of a per-family entry the calibration lacks (None: required)


SPECS: dict[str, Spec] = {
    "eff.stream": Spec("fraction", "share of the device's sustained bandwidth a streaming access reaches",
                       0.9, 0.2, 1.5),
    "eff.gather": Spec("fraction", "share of the sustained bandwidth of row gathers (k rows of K or V)",
                       0.6, 0.02, 1.5),
    "eff.sparse_rows": Spec("fraction", "share of the sustained bandwidth of r scattered elements per key row",
                            0.6, 0.02, 1.5),
    "sync_s": Spec("s", "synchronisation and timer cost of one timed call", 2e-5, 1e-8, 5e-4),
    "overlap_p": Spec("exponent", "how host issue and device work overlap: T = (host^p + device^p)^(1/p)",
                      4.0, 1.0, 30.0),
    "launch_factor": Spec("x launch_s", "device-side cost of one kernel launch (parallel region on CPUs), in "
                          "units of the device's launch_s", 1.0, 0.02, 200.0),
    "host_ops": Spec("x host_op_s", "host time of one call of a kernel, in units of the device's host dispatch "
                     "cost per op", 30.0, 0.01, 1e4, per="kernel"),
    "host_ops_per_launch": Spec("x host_op_s", "host time per launch for kernels without their own host_ops "
                                "and per op a shape-dependent path adds (fitted where such paths occur, else the median over the "
                                "fitted kernels)", 3.0, 0.01, 1e3),
    "bytes_in_flight": Spec("bytes", "bytes one program of a row-parallel kernel keeps in flight: its bandwidth "
                            "is this over the device's DRAM latency (Little's law)", 4e3, 1e2, 1e6,
                            per="family", absent=math.inf),
    "issue_per_cycle": Spec("loads/unit/cycle", "scattered element loads a unit issues per clock cycle "
                            "(framework gathers: an index computed per element)", 1.0, 1e-4, 1e3,
                            per="family", absent=math.inf),
    "issue_per_lane": Spec("loads/lane/cycle", "scattered element loads one load/store lane of a unit issues per "
                           "clock cycle (gathers of one indexed load per element: the lanes bind)", 0.0625, 1e-5, 1e2,
                           per="family", absent=math.inf),
    "llc_eff": Spec("fraction", "share of the LLC bandwidth reached by scattered loads that each cost one "
                    "access-granularity sector (fused gathers)", 0.5, 1e-3, 2.0, per="family", absent=math.inf),
    "row_issue_per_cycle": Spec("loads/program/cycle", "scattered loads one program of a row-parallel kernel "
                                "issues per cycle", 0.5, 1e-5, 1e3, per="family", absent=math.inf),
    "tile_eff": Spec("fraction", "share of one unit's peak matrix rate a program of a row-parallel kernel reaches on "
                     "its tiles (the query rows padded to the tile's), serial with its own loads",
                     0.5, 1e-3, 1.0, per="family", absent=math.inf),
    "topk_per_cycle": Spec("elements/program/cycle", "elements a top-k program ranks per clock cycle (one "
                           "program per ranked row)", 0.1, 1e-5, 1e2),
    "topk_programs_per_unit": Spec("programs", "top-k programs one unit runs at once", 2.0, 0.1, 64.0),
    "compute_eff": Spec("fraction", "share of peak arithmetic a family reaches (fitted on CPUs; on GPUs the "
                        "useful arithmetic never binds, a row-parallel kernel's padded tiles are tile_eff's)",
                        0.2, 1e-4, 1.0, per="family", absent=1.0),
    "bw_factor": Spec("fraction", "share of the bandwidth code of this family draws, relative to the reference "
                      "family (GPUs: the eager element-wise kernels; CPUs: of the measured stream rate, the "
                      "BLAS families of the framework's matmul read rate)",
                      0.7, 0.05, 1.2, per="family", absent=1.0),
    "per_thread_bw": Spec("B/s", "bandwidth one CPU thread can draw (derived: measured bandwidth / threads)",
                          1e10, 1e8, 1e12),
    "framework_matmul_share": Spec("fraction", "the fitted machines' framework matmul read rate over their "
                                   "stream rate (derived): the reference of the BLAS families on a CPU "
                                   "whose own rate was not measured", 0.5, 1e-3, 2.0),
}
# scattered loads of these loop structures have a rate of their own: issue_per_cycle.<family>.<kind>
# (the CPU loops; on GPUs eager torch.gather's K-once gather, r elements of each position-major row,
# whose published rows add 2.4-3.2x less time per component r than its gathers of K_t rows on
# the A100 and 1.2-1.5x less on the A10G: B = 64, S = 4096)
SCATTER_KINDS = ("lastdim", "rows")
_NAME = re.compile(r"^([a-z_]+(?:\.[a-z_]+)?)(?:\.(.+))?$")


def spec_of(name: str) -> tuple[str, Spec, str]:
    """(base name, spec, suffix) of a constant name; UserError for a name the model does not know."""
    if name in SPECS and not SPECS[name].per:
        return name, SPECS[name], ""
    for base, spec in SPECS.items():
        if spec.per and name.startswith(base + ".") and len(name) > len(base) + 1:
            return base, spec, name[len(base) + 1:]
    raise UserError(f"unknown cost-model constant {name!r}: the model knows "
                    f"{', '.join(b + ('.<' + s.per + '>' if s.per else '') for b, s in SPECS.items())}")


class Constants(Mapping):
    """A validated set of constant values (name -> float)."""

    def __init__(self, values: Mapping[str, float], where: str = "constants"):
        checked = {}
        for name, value in values.items():
            try:
                spec_of(name)
            except UserError as e:
                raise UserError(f"{where}: {e}") from None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise UserError(f"{where}: constant {name} must be a finite number >= 0, got {value!r}")
            checked[name] = float(value)
        self._values = checked

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def value(self, base: str, suffix: str = "") -> float:
        """The constant ``base`` (``base.suffix`` for per-family or per-kernel ones); a missing per-family
        entry takes its spec's ``absent`` value, a missing required one is an error."""
        spec = SPECS[base]
        name = f"{base}.{suffix}" if suffix else base
        if name in self._values:
            return self._values[name]
        if spec.per and spec.absent is not None:
            return spec.absent
        raise UserError(f"the calibration has no constant {name} ({spec.meaning})")

    def has(self, base: str, suffix: str = "") -> bool:
        return (f"{base}.{suffix}" if suffix else base) in self._values

    def with_values(self, updates: Mapping[str, float]) -> "Constants":
        """These constants with `updates` set (validated like any others)."""
        return Constants({**self._values, **updates})

    def as_dict(self) -> dict:
        return dict(self._values)
