"""Fitted constants as data: one TOML file per calibrated device in this folder, every value
``{ value, basis, source }`` (basis "fitted" for fitted values, "derived" for values computed
from them), plus ``[meta]`` saying what they were fitted on and how.

Constants describe implementations, not devices (sparq_sim.calibration.constants), so a device
without measurements takes the constants of its kind unchanged and contributes its own physics
from its hardware file (``constants_for``):
* GPUs (kind = "gpu"): ``gpu.toml``, fitted on the published measurements of both the A10G
  and the A100-SXM4-40GB (``sparq-sim validate --measurements A10G.csv,A100.csv --fit
  --write-calibration ...``), unless the device has a calibration file of its own;
* CPUs (kind = "cpu"): the local machine's constants (``local-cpu.toml``, fitted by
  ``sparq-sim validate --local --calibrate``); a machine whose read bandwidth was measured
  (``--hw local``, a recorded run's ``machine.toml``) draws its own share of it per thread, any
  other keeps the fitted per-thread bandwidth, the target's sustained bandwidth capping the total
  (``on_device``).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from sparq_sim import schema, tomlfile
from sparq_sim.errors import UserError
from sparq_sim.schema import Figure, FigureField, Number, Scalar, Section, Table, Text

HERE = Path(__file__).resolve().parent
KIND_FILES = {"gpu": "gpu.toml", "cpu": "local-cpu.toml"}
KINDS = tuple(KIND_FILES)


# The calibration file: what was fitted, on which device, at which bandwidth, and the constants
# (names checked against sparq_sim.calibration.constants when loaded).
FILE = Section({
    "device": Text(),
    "family": Text(),
    "kind": Text(choices=KINDS),
    "bandwidth_Bps": Number("B/s", 0, 1e15),       # the device's bandwidth the constants are relative to
    "meta": Table(Scalar(), required=False),        # what the constants were fitted on, and how
    "params": Table(FigureField("")),
})


def dumps(device_name: str, family: str, kind: str, params: dict, sources: dict, meta: dict,
          bandwidth_Bps: float) -> str:
    """TOML text of a calibration file."""
    fitted = meta.get("fitted_on", "")
    data = {"device": device_name, "family": family, "kind": kind, "bandwidth_Bps": float(bandwidth_Bps),
            "meta": dict(meta),
            "params": {k: Figure(float(params[k]), *sources.get(k, ("fitted", fitted))) for k in sorted(params)}}
    return schema.dumps(data, f"Fitted implementation constants for {device_name}; written by sparq-sim, "
                              "see docs/validation.md.")


def load(path: str | Path) -> dict:
    """{'device', 'family', 'kind', 'bandwidth_Bps', 'meta', 'params': {name: {value, basis, source}}}; every
    constant name is checked against the model's (an unknown or misspelt one is an error)."""
    from sparq_sim.calibration.constants import Constants
    where = f"calibration file {path}"
    data = schema.read(FILE, tomlfile.read(path, "calibration file"), where)
    if not data["params"]:
        raise UserError(f"{where}: no [params] table of constants")
    Constants({k: v.value for k, v in data["params"].items()}, where=where)
    data["meta"] = data["meta"] or {}
    data["params"] = {k: v.to_dict() for k, v in data["params"].items()}
    data["path"] = str(path)
    return data


def values(cal: dict) -> dict:
    return {k: float(v["value"]) for k, v in cal["params"].items()}


def constants_for(device, path: str | Path | None = None) -> tuple[dict, str]:
    """Constants for `device` and a line saying which they are (its own fit, or its kind's)."""
    if path is not None:
        cal = load(path)
    else:
        own = HERE / f"{device.name}.toml"
        kind_file = HERE / KIND_FILES.get(device.kind, "")
        if own.is_file():
            cal = load(own)
        elif kind_file.is_file():
            cal = load(kind_file)
        else:
            raise UserError(f"no calibration for {device.name} ({device.kind}): run "
                            f"`sparq-sim validate --local --calibrate` (CPU) or fit on measurements of a GPU")
    if cal["kind"] != device.kind:
        raise UserError(f"calibration file {cal['path']} holds {cal['kind']} constants ({cal['device']}); "
                        f"{device.name} is a {device.kind}: use a calibration of a {device.kind}")
    params = on_device(values(cal), device)
    fitted = cal.get("meta", {}).get("devices", cal.get("device"))
    if cal.get("device") == device.name:
        return params, f"fitted on {device.name} ({cal['path']})"
    return params, (f"constants fitted on {fitted} ({cal['path']}), with {device.name}'s own physics "
                    f"(its hardware file: bandwidth, units, clock, latency, LLC, launch and host costs)")


def bandwidth_share_per_thread(device, threads: int | None = None) -> float:
    """A CPU thread's share of the read bandwidth measured with `threads` threads (all its cores
    by default): derived from the machine the rows ran on, so a prediction for another measured
    machine takes that machine's share, not the fitted one's."""
    return device.bandwidth_Bps.value / (threads or int(device.compute_units.value))


def on_device(params: dict, device, threads: int | None = None) -> dict:
    """Constants as they apply on `device`: a CPU whose read bandwidth was measured (with
    `threads` threads, all its units by default) draws its own share of it per thread, whichever
    machine the constants were fitted on; elsewhere they apply unchanged."""
    if device.kind != "cpu" or device.bandwidth_Bps.basis != "measured" or "per_thread_bw" not in params:
        return params
    return {**params, "per_thread_bw": bandwidth_share_per_thread(device, threads)}


def today() -> str:
    return _dt.date.today().isoformat()
