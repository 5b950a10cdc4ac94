"""Predicted against measured: predictions for measurement rows, speedups, error summaries, plot.

``validate(measurements, ...)`` groups rows by hardware file, takes each device's constants (its
own calibration, its family's scaled by datasheet figures, or, with ``fit=True``, a fit on the
given rows) and returns a ``Report``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sparq_sim.errors import UserError
from sparq_sim.validation.stats import abs_pct_error, grouped, summary


@dataclass
class Report:
    rows: list                        # Measurement
    predicted: np.ndarray
    errors: np.ndarray                # abs % error of time per call
    speedup_measured: np.ndarray      # best dense of (device, B, S) / this row (nan without a dense row)
    speedup_predicted: np.ndarray
    sources: dict = field(default_factory=dict)   # hardware -> where its constants came from
    fits: dict = field(default_factory=dict)      # hardware -> fit report (when fitted)
    label: str = ""
    fitted_on: str = ""                           # --fit-on: the measurements the constants were fitted on
    device_names: dict = field(default_factory=dict)  # hardware of every row, fitted or predicted -> its name
    kind: str = ""                                # the devices' kind (gpu, cpu)

    @property
    def speedup_errors(self) -> np.ndarray:
        ok = ~np.isnan(self.speedup_measured)
        return np.array([abs_pct_error(p, m) for p, m in zip(self.speedup_predicted[ok], self.speedup_measured[ok])])

    def to_dict(self, worst: int = 10) -> dict:
        kernels = [m.kernel for m in self.rows]
        devices = [m.device_name for m in self.rows]
        sp_ok = ~np.isnan(self.speedup_measured)
        out = {
            "label": self.label,
            "overall": summary(self.errors),
            "per_kernel": grouped(kernels, self.errors),
            "per_device": grouped(devices, self.errors),
            "speedup": {"overall": summary(self.speedup_errors),
                        "per_kernel": grouped([k for k, ok in zip(kernels, sp_ok) if ok], self.speedup_errors)},
            "constants": self.sources,
            "worst": [self.row_dict(i) for i in np.argsort(-self.errors)[:worst]],
        }
        if self.fits:
            out["fits"] = self.fits
        if self.fitted_on:
            out["fitted_on"] = self.fitted_on
        return out

    def row_dict(self, i: int) -> dict:
        m = self.rows[i]
        return {"line": m.line, "device_name": m.device_name, "kernel": m.kernel, "batch_size": m.batch,
                "sequence_length": m.seq, "r": m.r, "k": m.k, "measured_s": m.duration_s,
                "predicted_s": float(self.predicted[i]), "abs_pct_error": float(self.errors[i]),
                "speedup_measured": _num(self.speedup_measured[i]),
                "speedup_predicted": _num(self.speedup_predicted[i])}


def _num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def device_for(hardware: str):
    if hardware == "local":
        from sparq_sim.calibration.local import local_device
        from sparq_sim.kernels.timing import read_bandwidth
        return local_device(measure=read_bandwidth)
    from sparq_sim.hardware import load_device
    return load_device(hardware)


def speedups(rows, times) -> np.ndarray:
    """Best dense time of the row's (device, B, S) over the row's time (nan if that group has no dense row)."""
    best: dict = {}
    for m, t in zip(rows, times):
        if m.method == "dense":
            best[m.group] = min(best.get(m.group, math.inf), t)
    return np.array([best[m.group] / t if m.group in best else math.nan for m, t in zip(rows, times)])


def validate(rows, *, fit: bool = False, train=None, calibration=None, fit_on=None, label: str = "") -> Report:
    """Predict every row. Constants come from the calibration data by default; with ``fit`` they
    are fitted per device on ``train`` rows (default: all rows); with ``fit_on`` (rows of other
    devices) they are fitted once on those rows and predict every row with its own device's physics."""
    from sparq_sim.calibration import fit as fitting
    from sparq_sim.calibration import store

    if not rows:
        raise UserError("no measurement rows to validate")
    predicted = np.zeros(len(rows))
    sources, fits = {}, {}
    by_hw: dict = {}
    for i, m in enumerate(rows):
        by_hw.setdefault(m.hardware, []).append(i)
    devices = {hw: device_for(hw) for hw in by_hw}
    shared = None
    if fit_on is not None:
        source_devices = {m.hardware: device_for(m.hardware) for m in fit_on}
        kinds = {d.kind for d in source_devices.values()} | {d.kind for d in devices.values()}
        if len(kinds) > 1:
            raise UserError("--fit-on: the fitted and the validated measurements are of different device kinds "
                            f"({', '.join(sorted(kinds))}): constants do not transfer between GPUs and CPUs")
        params, rep = fitting.fit(fit_on, source_devices)
        shared = params
        fits["fitted_on"] = rep
        fitted_names = ", ".join(sorted(d.name for d in source_devices.values()))
    for hw, idx in by_hw.items():
        device = devices[hw]
        subset = [rows[i] for i in idx]
        if shared is not None:
            predicted[idx] = _predict_shared(subset, device, shared)
            sources[hw] = f"fitted on {fitted_names} ({len(fit_on)} rows), predicted with {device.name}'s own physics"
            continue
        if fit:
            train_rows = [m for m in (train if train is not None else subset) if m.hardware == hw]
            if not train_rows:
                raise UserError(f"no training rows for device {hw}")
            params, rep = fitting.fit(train_rows, device)
            fits[hw] = rep
            sources[hw] = f"fitted on {len(train_rows)} rows of the validated file"
        else:
            params, sources[hw] = store.constants_for(device, calibration)
            missing = sorted({m.kernel for m in subset if f"host_ops.{m.kernel}" not in params})
            if missing and "host_ops_per_launch" not in params:
                raise UserError(f"no fitted constants for kernel(s) {', '.join(missing)} on {hw}")
        predicted[idx] = fitting.predict_times(subset, device, params)
    measured = np.array([m.duration_s for m in rows])
    errors = abs_pct_error(predicted, measured)
    if shared is not None and fits["fitted_on"].get("unpinned_range"):
        fits["fitted_on"]["unpinned_spread"] = unpinned_spread(rows, by_hw, devices, shared,
                                                               fits["fitted_on"]["unpinned_range"], predicted)
    named = {**devices, **(source_devices if fit_on is not None else {})}
    return Report(rows, predicted, errors, speedups(rows, measured), speedups(rows, predicted), sources, fits, label,
                  device_names={hw: d.name for hw, d in named.items()}, kind=next(iter(devices.values())).kind)


def _predict_shared(subset, device, params) -> np.ndarray:
    """Rows of one device predicted with constants fitted elsewhere (a measured CPU's read bandwidth
    was measured with the rows' threads: store.on_device)."""
    from sparq_sim.calibration import fit as fitting
    from sparq_sim.calibration import store
    return fitting.predict_times(subset, device, store.on_device(params, device, subset[0].threads))


def unpinned_spread(rows, by_hw: dict, devices: dict, params: dict, ranges: dict, predicted) -> dict:
    """What the constants the source rows leave free do to the predicted rows.

    A constant whose term binds on no source row fits them alike anywhere in a range (``ranges``:
    name -> (lowest, highest), from the fit); the fit takes its prior within that range, yet on
    another device the term may bind. For each such constant: the target's errors with it at either
    end of the range, to set beside the prior's (the report's overall), and how many target rows
    move by more than 0.1%: the part of the cross-device error that rests on values the source
    device did not measure.
    """
    measured = np.array([m.duration_s for m in rows])

    def errors_with(name, value):
        out = np.zeros(len(rows))
        trial = {**params, name: value}
        for hw, idx in by_hw.items():
            out[idx] = _predict_shared([rows[i] for i in idx], devices[hw], trial)
        return out

    spread = {}
    for name, (lowest, highest) in sorted(ranges.items()):
        if name not in params:
            continue
        at_low, at_high = errors_with(name, lowest), errors_with(name, highest)
        moved = (np.abs(at_low / predicted - 1) > 1e-3) | (np.abs(at_high / predicted - 1) > 1e-3)
        spread[name] = {"fitted": params[name], "lowest": lowest, "highest": highest,
                        "rows_moved": int(moved.sum()),
                        "at_lowest": summary(abs_pct_error(at_low, measured)),
                        "at_highest": summary(abs_pct_error(at_high, measured))}
    return spread


def training_lengths(rows, train_seqs=None) -> list:
    """The sequence lengths a hold-out fits on: ``train_seqs``, or every other distinct length of
    ``rows`` (the 1st, 3rd, ...)."""
    if train_seqs is not None:
        return sorted(train_seqs)
    return sorted({m.seq for m in rows})[0::2]


def split_by_seq(rows, train_seqs=None):
    """Fit-on-half split: train on ``training_lengths`` of the rows; the rest are held back."""
    seqs = sorted({m.seq for m in rows})
    train_seqs = set(training_lengths(rows, train_seqs))
    train = [m for m in rows if m.seq in train_seqs]
    test = [m for m in rows if m.seq not in train_seqs]
    if not train or not test:
        raise UserError(f"hold-out by sequence length needs at least two sequence lengths; file has {seqs}")
    return train, test, sorted(train_seqs)


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

def format_report(report: Report, worst: int = 10) -> str:
    from sparq_sim.tables import render_table
    d = report.to_dict(worst)

    def rows_of(groups):
        return [[k, str(v["n"]), f"{v['median_abs_pct_error']:.1f}%", f"{v['p90_abs_pct_error']:.1f}%"]
                for k, v in groups.items()]

    header = ["", "n", "median |err|", "p90 |err|"]
    lines = [f"validation: {report.label}" if report.label else "validation"]
    for hw, src in report.sources.items():
        lines.append(f"constants for {hw}: {src}")
    for fit_name, fit in report.fits.items():
        free = fit.get("unpinned_range") or {}
        if free:
            rows = "--fit-on" if fit_name == "fitted_on" else fit_name
            lines.append(f"not pinned by the {rows} rows (every value in the range fits them alike; each takes "
                         "its prior, brought into the range): "
                         + ", ".join(f"{k} ({a:.3g} to {b:.3g})" for k, (a, b) in free.items()))
        spread = fit.get("unpinned_spread") or {}
        if spread:
            lines.append("median |err| of the predicted rows with each at its lowest / prior / highest value: "
                         + ", ".join(f"{k} {v['at_lowest']['median_abs_pct_error']:.1f}% / "
                                     f"{d['overall']['median_abs_pct_error']:.1f}% / "
                                     f"{v['at_highest']['median_abs_pct_error']:.1f}% ({v['rows_moved']} rows move)"
                                     for k, v in spread.items()))
    lines += ["", "time per call"]
    lines.append(render_table(rows_of({"overall": d["overall"]}) + rows_of(d["per_kernel"]), ["kernel"] + header[1:]))
    lines += ["", render_table(rows_of(d["per_device"]), ["device"] + header[1:])]
    sp = d["speedup"]["overall"]
    if sp["n"]:
        lines += ["", f"speedup against the best dense kernel of the same (device, B, S): n = {sp['n']}, "
                      f"median |err| {sp['median_abs_pct_error']:.1f}%, p90 {sp['p90_abs_pct_error']:.1f}%"]
    lines += ["", f"worst {len(d['worst'])} rows"]
    lines.append(render_table(
        [[w["kernel"], str(w["batch_size"]), str(w["sequence_length"]), str(w["r"] or ""), str(w["k"] or ""),
          f"{w['measured_s'] * 1e6:.0f}", f"{w['predicted_s'] * 1e6:.0f}", f"{w['abs_pct_error']:.1f}%"]
         for w in d["worst"]],
        ["kernel", "B", "S", "r", "k", "measured us", "predicted us", "|err|"]))
    return "\n".join(lines)


def markdown_summary(report: Report) -> str:
    """The summary table for README/docs: overall and per kernel."""
    d = report.to_dict()
    lines = ["| kernel | n | median abs. error | p90 abs. error |", "| --- | ---: | ---: | ---: |"]
    for k, v in [("overall", d["overall"]), *d["per_kernel"].items()]:
        name = f"**{k}**" if k == "overall" else k
        lines.append(f"| {name} | {v['n']} | {v['median_abs_pct_error']:.1f}% | {v['p90_abs_pct_error']:.1f}% |")
    return "\n".join(lines)


def plot(report: Report, path) -> None:
    """Predicted against measured and error against S (sparq_sim.plots.validation_chart)."""
    from sparq_sim.plots import validation_chart

    validation_chart([m.kernel for m in report.rows], np.array([m.seq for m in report.rows]),
                     np.array([m.duration_s for m in report.rows]), report.predicted, report.errors,
                     report.label or "sparq-sim validate", path)
