"""The files of ``validate --local`` in its --out folder, written together or not at all:
results.csv (the timed runs), predictions.csv (measured against predicted per case),
calibration-runs.csv and local-cpu.toml (when it calibrated), machine.toml (the hardware file of
the machine the runs were timed on, so that they can be predicted later, elsewhere, with its own
physics: ``validate --measurements FOLDER/results.csv --fit-on OTHER/calibration-runs.csv``),
report.json, summary.md, and the plot (validate.png, or --plot)."""

from __future__ import annotations

import csv
import io
import json


def runs_csv(rows) -> str:
    """Measurement rows as CSV in the published schema."""
    from sparq_sim.validation.measurements import COLUMNS
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def predictions_csv(report) -> str:
    """One line per case: measured and predicted seconds and the absolute error in percent."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["kernel", "sequence_length", "r", "k", "measured_s", "predicted_s", "abs_pct_error"])
    for m, p, e in zip(report.rows, report.predicted, report.errors):
        w.writerow([m.kernel, m.seq, m.r or "", m.k or "", repr(m.duration_s), repr(float(p)), f"{e:.2f}"])
    return buf.getvalue()


def summary_md(report, env: dict, notes) -> str:
    from sparq_sim.validation import core
    text = (f"{report.label}\n\n{core.markdown_summary(report)}\n\n"
            f"Environment: {env['cpu']}, {env['threads']} threads, torch {env['torch']}, "
            f"read bandwidth {env['bandwidth_GBps']:.1f} GB/s ({env['bandwidth_source']}); "
            f"allocator: {env['allocator']}.\n")
    if notes:
        text += "\nNotes: " + "; ".join(notes) + "\n"
    return text


def machine_toml(device, when: str) -> str:
    """The hardware file of the machine a run was timed on (its measured bandwidth included), named
    after its CPU and the day, so that constants fitted on it say which machine they came from."""
    from sparq_sim import schema
    from sparq_sim.hardware import file_data
    from sparq_sim.machine import cpu_model
    from sparq_sim.validation.measurements import MACHINE_FILE
    data = {**file_data(device), "name": f"{cpu_model()}, {device.compute_units.value:.0f} threads, {when}"}
    return schema.dumps(data, f"The machine the runs beside this file were timed on, written by "
                              f"`sparq-sim validate --local`; the {MACHINE_FILE} of their folder.\n")


def write_all(out, plot, report, rows, env: dict, notes, calibration_rows=(), calibration_path=None,
              machine=None) -> None:
    """Every file of the run (calibration-runs.csv and local-cpu.toml only with `calibration_rows`,
    machine.toml with `machine`, the Device the runs were predicted with)."""
    from sparq_sim.outputs import OutputSet
    from sparq_sim.validation import core
    from sparq_sim.validation.measurements import MACHINE_FILE
    with OutputSet() as outputs:
        if machine is not None:
            outputs.write_text(out / MACHINE_FILE, machine_toml(machine, env.get("date", "")))
        outputs.write_text(out / "results.csv", runs_csv(rows))
        outputs.write_text(out / "predictions.csv", predictions_csv(report))
        if calibration_rows:
            outputs.write_text(out / "calibration-runs.csv", runs_csv(calibration_rows))
            outputs.write_text(out / "local-cpu.toml", calibration_path.read_text())
        d = report.to_dict()
        d["environment"] = env
        d["notes"] = notes
        outputs.write_text(out / "report.json", json.dumps(d, indent=2) + "\n")
        outputs.write_text(out / "summary.md", summary_md(report, env, notes))
        core.plot(report, outputs.staged(plot or out / "validate.png"))


STAND_IN_KERNEL, STAND_IN_SEQ = "attn-torch", 32768


def framework_matmul_stand_in(calibration_csv) -> tuple[float, str]:
    """(bytes/s, how) of the framework's matmul read rate for a run that did not time it: its
    calibration attn-torch call at S = 32k (two batched matrix-vector products over K and V and a
    softmax), K and V bytes over its time. One of attn-torch's own calls, so predictions of attn-torch
    from it are circular; those of the other torch kernels are not."""
    from sparq_sim.validation.measurements import read_measurements
    rows = [m for m in read_measurements(calibration_csv)
            if m.kernel == STAND_IN_KERNEL and m.seq == STAND_IN_SEQ and m.batch == 1]
    if not rows:
        from sparq_sim.errors import UserError
        raise UserError(f"{calibration_csv}: no {STAND_IN_KERNEL} row at S = {STAND_IN_SEQ} to stand in for the "
                        "framework's matmul rate")
    m = rows[0]
    kv_bytes = 2 * m.batch * m.n_head * m.seq * m.head_dim * 4          # float32 K and V
    return kv_bytes / m.duration_s, (f"derived: the run's calibration {STAND_IN_KERNEL} call at S = {STAND_IN_SEQ} "
                                     f"({calibration_csv}), K and V bytes over its time; the run did not time "
                                     "the framework's matmul")


def backfill_framework_matmul(folder) -> float:
    """Write the stand-in into the machine.toml of a recorded run's folder that lacks the figure;
    returns the figure (bytes/s)."""
    import tomllib
    from pathlib import Path

    from sparq_sim import outputs, schema
    from sparq_sim.hardware import FRAMEWORK_MATMUL
    from sparq_sim.validation.measurements import MACHINE_FILE
    folder = Path(folder)
    data = tomllib.loads((folder / MACHINE_FILE).read_text())
    calibration = data.setdefault("calibration", {})
    if FRAMEWORK_MATMUL in calibration:
        return float(calibration[FRAMEWORK_MATMUL]["value"])
    bps, how = framework_matmul_stand_in(folder / "calibration-runs.csv")
    calibration[FRAMEWORK_MATMUL] = {"value": bps, "basis": "derived", "source": how}
    comment = "\n".join(line.lstrip("# ").rstrip() for line in (folder / MACHINE_FILE).read_text().splitlines()
                        if line.startswith("#"))
    outputs.write_text_atomic(folder / MACHINE_FILE, schema.dumps(data, comment))
    return bps
