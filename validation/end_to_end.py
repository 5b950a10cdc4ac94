"""Published end-to-end speedups against this project's predictions of the same setups.

``data/end-to-end.csv`` holds each published whole-decoder measurement (setup, device, the
implementation model that composes it, workload, published step speedup, source). ``check``
predicts every setup twice, with that composed implementation model (its own default timing:
calibrated kernels for gpt-fast) and with the ideal bound (fused kernels, roofline), and gives
the signed error of each predicted step speedup against the published one. ``sparq-sim validate
--end-to-end`` prints it; with ``--write-accuracy`` it is recorded beside the cross-device kernel
errors, and ``predict`` reports it as the measured error of such a prediction.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sparq_sim.errors import UserError
from sparq_sim.validation import DATA

PATH = DATA / "end-to-end.csv"
COLUMNS = ("setup", "hardware", "implementation", "model", "seq", "batch", "kv_dtype", "weight_dtype",
           "threads", "r", "k", "published_speedup", "source")
IDEAL = "ideal"


@dataclass(frozen=True)
class Setup:
    """One published end-to-end measurement."""

    setup: str
    hardware: str
    implementation: str
    model: str
    seq: int
    batch: int
    kv_dtype: str
    weight_dtype: str
    threads: int | None
    r: int | None              # None: the workload's default for 1/8 compression
    k: int | None
    published_speedup: float
    source: str

    def workload(self):
        from sparq_sim.models import get_preset
        from sparq_sim.workload import Workload
        return Workload.build(get_preset(self.model), self.seq, batch=self.batch, kv_dtype=self.kv_dtype,
                              weight_dtype=self.weight_dtype, r=self.r, k=self.k)

    def composed(self):
        """The implementation model of the setup, configured with its thread count if it has one."""
        from sparq_sim.implementations import get_implementation
        impl = get_implementation(self.implementation)
        return impl.configure(threads=self.threads) if self.threads else impl


def _optional_int(text: str) -> int | None:
    return int(text) if text.strip() else None


def read_setups(path: str | Path = PATH) -> list[Setup]:
    """The setups of an end-to-end file; UserError naming the file and line of a malformed row."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise UserError(f"{path}: columns must be {', '.join(COLUMNS)}")
            setups = []
            for n, rec in enumerate(reader, start=2):
                try:
                    setups.append(Setup(
                        rec["setup"], rec["hardware"], rec["implementation"], rec["model"], int(rec["seq"]),
                        int(rec["batch"]), rec["kv_dtype"], rec["weight_dtype"],
                        _optional_int(rec["threads"]), _optional_int(rec["r"]), _optional_int(rec["k"]),
                        float(rec["published_speedup"]), rec["source"]))
                except (TypeError, ValueError) as exc:
                    raise UserError(f"{path} line {n}: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    if not setups:
        raise UserError(f"{path}: no setups")
    return setups


def check(setups: list[Setup]) -> list[dict]:
    """Per setup: the published step speedup, each model's predicted one and its signed error (%)."""
    from sparq_sim.hardware import load_device
    from sparq_sim.predict import predict

    out = []
    for s in setups:
        device, w = load_device(s.hardware), s.workload()
        made = {s.implementation: predict(w, device, s.composed()), IDEAL: predict(w, device, IDEAL, "roofline")}
        predicted = {k: p.speedup["step"] for k, p in made.items()}
        out.append({"setup": s.setup, "hardware": s.hardware, "kind": device.kind, "seq": s.seq,
                    "published_speedup": s.published_speedup, "source": s.source,
                    "predicted_speedup": predicted, "timing": {k: p.timing for k, p in made.items()},
                    "error_pct": {k: 100.0 * (v / s.published_speedup - 1.0) for k, v in predicted.items()}})
    return out


def format_table(results: list[dict]) -> str:
    from sparq_sim.tables import render_table
    rows = []
    for r in results:
        for impl, speedup in r["predicted_speedup"].items():
            rows.append([r["setup"], f"{r['seq']}", impl, f"{r['published_speedup']:.2f}x", f"{speedup:.2f}x",
                         f"{r['error_pct'][impl]:+.0f}%"])
    return render_table(rows, ["published setup", "S", "predicted by", "published", "predicted", "error"])
