"""How far calibrated predictions have been measured to be from reality, on devices they were not
fitted on: the error band `predict` prints beside its estimate.

``accuracy.json`` (next to this file) holds, per direction of a cross-device validation
("a10g -> a100-40gb": fitted on the first device's measurements, checked on the second's), its
kind of device and per kernel label, the median and p90 absolute error of the time per call and
of the speedup against the best dense kernel. ``sparq-sim validate --measurements T --fit-on S
--write-accuracy FILE`` writes a direction; ``band(labels, kind)`` takes the worst over the
directions of that kind of the worst of the labels (a CPU's and a GPU's kernels share labels).
Its ``end_to_end`` entry (written by ``validate --end-to-end --write-accuracy FILE``) holds the
published whole-decoder speedups with each implementation's predicted one; ``end_to_end(name,
kind)`` gives those of one implementation on one kind of device.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATH = HERE / "accuracy.json"


def _current(path: str | Path) -> dict:
    """The accuracy file's contents, or an empty record where there is none yet."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {"directions": {}}


def write(data: dict, path: str | Path) -> None:
    """Write an accuracy record (from ``record`` or ``record_end_to_end``) atomically."""
    from sparq_sim.outputs import write_text_atomic
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def record(report: dict, direction: str, command: str, path: str | Path = PATH, kind: str = "gpu") -> dict:
    """Merge one cross-device validation report (``Report.to_dict()``) of devices of `kind` into
    the accuracy file."""
    data = _current(path)
    kernels = {}
    for label, t in report["per_kernel"].items():
        s = report["speedup"]["per_kernel"].get(label, {})
        kernels[label] = {"n": t["n"], "median_abs_pct": t["median_abs_pct_error"],
                          "p90_abs_pct": t["p90_abs_pct_error"],
                          "speedup_median_abs_pct": s.get("median_abs_pct_error"),
                          "speedup_p90_abs_pct": s.get("p90_abs_pct_error")}
    data["directions"][direction] = {"command": command, "kind": kind, "overall": {
        "median_abs_pct": report["overall"]["median_abs_pct_error"],
        "p90_abs_pct": report["overall"]["p90_abs_pct_error"],
        "speedup_median_abs_pct": report["speedup"]["overall"]["median_abs_pct_error"],
        "speedup_p90_abs_pct": report["speedup"]["overall"]["p90_abs_pct_error"]}, "kernels": kernels}
    return data


def record_end_to_end(results: list[dict], command: str, path: str | Path = PATH) -> dict:
    """Merge the end-to-end checks (``validation.end_to_end.check``) into the accuracy file."""
    data = _current(path)
    data["end_to_end"] = {"command": command, "setups": results}
    return data


def end_to_end(implementation: str, kind: str, timing: str, path: str | Path | None = None) -> list[dict]:
    """The recorded end-to-end checks of `implementation` timed by `timing` on devices of `kind`:
    setup, published and predicted step speedups, signed error in percent."""
    path = Path(PATH if path is None else path)
    if not path.is_file():
        return []
    entry = _read(str(path), path.stat().st_mtime_ns).get("end_to_end", {})
    return [{"setup": r["setup"], "seq": r["seq"], "published_speedup": r["published_speedup"],
             "predicted_speedup": r["predicted_speedup"][implementation],
             "error_pct": r["error_pct"][implementation], "source": r["source"]}
            for r in entry.get("setups", [])
            if r["kind"] == kind and r.get("timing", {}).get(implementation) == timing]


def describe(check: dict) -> str:
    """One end-to-end check (an item of ``end_to_end``) in words."""
    return (f"{check['setup']} (S = {check['seq']}): {check['predicted_speedup']:.2f}x predicted, "
            f"{check['published_speedup']:.2f}x published, {check['error_pct']:+.0f}%")


@lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> dict:
    """The accuracy file, read once per version (predict asks for it on every call)."""
    return json.loads(Path(path).read_text())


def band(labels, kind: str = "gpu", path: str | Path = PATH) -> dict | None:
    """The validated error of a prediction made of these kernels on a device of `kind`: for each
    figure the worst over the recorded directions of that kind and the labels; None when a label
    was never validated across devices of that kind."""
    path = Path(path)
    if not path.is_file():
        return None
    data = _read(str(path), path.stat().st_mtime_ns)
    keys = ("median_abs_pct", "p90_abs_pct", "speedup_median_abs_pct", "speedup_p90_abs_pct")
    worst = dict.fromkeys(keys, 0.0)
    sources = []
    for direction, entry in sorted(data.get("directions", {}).items()):
        if entry.get("kind", "gpu") != kind:
            continue
        for label in labels:
            k = entry["kernels"].get(label)
            if k is None:
                return None
            for key in keys:
                if k.get(key) is not None:
                    worst[key] = max(worst[key], float(k[key]))
        sources.append(f"{direction} (`{entry['command']}`)")
    if not sources:
        return None
    unit = kind.upper()
    worst["source"] = (f"cross-device validation of kernels {', '.join(labels)}: fitted on one {unit}, "
                       f"checked on another; worst of " + "; ".join(sources))
    return worst
