"""Fitted constants as data: one TOML file per calibrated device in this folder, every value
``{ value, basis, source }`` (basis "fitted" for fitted values, "derived" for values computed
from them), plus ``[meta]`` saying what they were fitted on and how.

Family rule for devices without measurements (``constants_for``):
* nvidia GPUs (kind = "gpu"): the A10G's constants. Bandwidth efficiencies, launch, host,
  synchronisation costs and the overlap exponent are kept; rates that scale with the memory
  system (per-row bandwidth, scattered-load and top-k rates) are scaled by the ratio of the
  target's datasheet bandwidth to the A10G's. Time for bytes is bytes over the target's
  datasheet bandwidth times the kept efficiency.
* CPUs (kind = "cpu"): the local machine's constants (``local-cpu.toml``, fitted by
  ``sparq-sim validate --local --fit``), per-thread bandwidth kept, the datasheet bandwidth of
  the target capping the total; compute scales with the target's peak per thread.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from sparq_sim import tomlfile
from sparq_sim.errors import UserError

HERE = Path(__file__).resolve().parent
FAMILY_FILES = {"gpu": "a10g.toml", "cpu": "local-cpu.toml"}
BANDWIDTH_SCALED = ("row_bw.", "scattered_rate.", "scattered_row_rate.", "topk_rate")


def _q(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def dumps(device_name: str, family: str, params: dict, sources: dict, meta: dict, bandwidth_Bps: float) -> str:
    """TOML text of a calibration file."""
    lines = [f"# Fitted implementation constants for {device_name}; written by sparq-sim, see docs/validation.md.",
             f"device = {_q(device_name)}", f"family = {_q(family)}",
             f"bandwidth_Bps = {bandwidth_Bps!r}", "", "[meta]"]
    for k, v in meta.items():
        lines.append(f"{k} = {_q(v) if isinstance(v, str) else repr(v)}")
    lines += ["", "[params]"]
    for k in sorted(params):
        basis, source = sources.get(k, ("fitted", meta.get("fitted_on", "")))
        lines.append(f"{_q(k)} = {{ value = {float(params[k])!r}, basis = {_q(basis)}, source = {_q(source)} }}")
    return "\n".join(lines) + "\n"


def load(path: str | Path) -> dict:
    """{'device', 'family', 'bandwidth_Bps', 'meta', 'params': {name: {value, basis, source}}}."""
    data = tomlfile.read(path, "calibration file")
    for key, kind in (("device", str), ("family", str), ("bandwidth_Bps", (int, float)), ("params", dict)):
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise UserError(f"calibration file {path}: field {key} is missing or not a "
                            f"{'table' if kind is dict else 'string' if kind is str else 'number'}")
    if not 0 < data["bandwidth_Bps"] < float("inf"):
        raise UserError(f"calibration file {path}: field bandwidth_Bps must be a positive number")
    for name, fig in data.get("params", {}).items():
        if not isinstance(fig, dict) or not isinstance(fig.get("value"), (int, float)) or not fig.get("source"):
            raise UserError(f"calibration file {path}: params.{name} needs value, basis and source")
    data["path"] = str(path)
    return data


def values(cal: dict) -> dict:
    return {k: float(v["value"]) for k, v in cal["params"].items()}


def constants_for(device, path: str | Path | None = None) -> tuple[dict, str]:
    """Constants for `device` and a line saying where they came from (own fit or family rule)."""
    if path is not None:
        cal = load(path)
    else:
        own = HERE / f"{device.name}.toml"
        fam = HERE / FAMILY_FILES.get(device.kind, "")
        if own.is_file():
            cal = load(own)
        elif fam.is_file():
            cal = load(fam)
        else:
            raise UserError(f"no calibration for {device.name} ({device.kind}): run "
                            f"`sparq-sim validate --local --fit` (CPU) or fit on measurements of its family")
    if family_kind(cal["family"]) != device.kind:
        raise UserError(f"calibration file {cal['path']} holds {cal['family']} constants ({cal['device']}); "
                        f"{device.name} is a {device.kind}: use a calibration of a {device.kind}")
    params = values(cal)
    if cal.get("device") == device.name:
        return params, f"fitted on {cal['device']} ({cal['path']})"
    ratio = device.bandwidth_Bps.value / float(cal["bandwidth_Bps"])
    for k in params:
        if k.startswith(BANDWIDTH_SCALED):
            params[k] *= ratio
    return params, (f"family rule: {cal['device']}'s constants ({cal['path']}), memory-system rates scaled by "
                    f"datasheet bandwidth ratio {ratio:.3g}")


def family_kind(family: str) -> str:
    """The device kind ("cpu" or "gpu") a calibration family's constants describe."""
    return "gpu" if "gpu" in str(family).lower() else "cpu"


def today() -> str:
    return _dt.date.today().isoformat()
