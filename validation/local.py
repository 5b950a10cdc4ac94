"""``validate --local``: run this project's kernels here, predict the same cases, compare.

Kernels (via ``sparq_sim.kernels``): the fast CPU kernels (``attn-cpu``, ``sparq-attn-cpu``)
when the ``cpu`` impl is installed, and the replicas of the published eager PyTorch kernels
(``attn-torch``, ``attn-nn``, ``sparq-attn-torch``, ``sparq-attn-torch-oneK``).

The run, in its parts: the case grids (``validation.cases``), the timed runs
(``validation.runs``), whether the stored calibration fits this machine
(``validation.machine_match``), calibrating when it does not (``calibrate_local``, here), the
prediction of the measured cases, and the files of the --out folder (``validation.local_files``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sparq_sim.errors import UserError
from sparq_sim.validation.cases import calibration_cases, case_of, validation_cases  # noqa: F401
from sparq_sim.validation.machine_match import (BANDWIDTH_TOLERANCE, calibration_mismatch,  # noqa: F401
                                                machine_facts)
from sparq_sim.validation.runs import measure, to_measurements


def calibrate_local(threads: int, quick: bool, path, also=()) -> tuple[dict, dict, list, list, list, object]:
    """Run the calibration microbenchmarks and write a local calibration file.

    Cases in `also` (the validation cases) are measured in the same rounds, so calibration and
    validation see the same machine conditions; they are returned, never fitted on.
    Returns (params, fit report, calibration rows, rows of `also`, notes, the rates timed beside
    them: runs.RoundRates)."""
    from sparq_sim.calibration import calibrate
    from sparq_sim.calibration.local import local_device
    from sparq_sim.machine import cpu_model
    cal_cases = calibration_cases(quick)
    all_rows, notes, rates = measure(cal_cases + [c for c in also if c not in cal_cases], threads, quick,
                                     "measuring  " if also else "calibrating")
    local_device.cache_clear()
    # the constants are fitted against the stream and framework matmul rates timed in these rounds
    device = with_framework_matmul(local_device(*rates.stream), rates.matmul)
    src = device.bandwidth_Bps.source
    labels = set(cal_cases)
    rows = [row for row in all_rows if case_of(row) in labels]
    other = [row for row in all_rows if case_of(row) not in labels]
    params, rep = calibrate(to_measurements(rows), device, path,
                            command=f"sparq-sim validate --local --calibrate{' --quick' if quick else ''}",
                            fitted_on=f"local calibration microbenchmarks ({cpu_model()}, {threads} threads)",
                            family="cpu", threads_default=threads,
                            # what identifies this machine (calibration_mismatch), and the bandwidth's source
                            meta={**machine_facts(), "threads": threads, "bandwidth_source": src})
    return params, rep, rows, other, notes, rates


def _needs_calibrating(cal_path: Path, threads: int) -> bool:
    """Whether the stored calibration is missing or was not fitted on this machine (said on stderr)."""
    from sparq_sim.calibration import store
    from sparq_sim.kernels.timing import read_bandwidth
    if not cal_path.is_file():
        reasons = [f"there is no calibration at {cal_path}"]
    else:
        reasons = calibration_mismatch(store.load(cal_path), machine_facts(),
                                       lambda: read_bandwidth()[0])
    if reasons:
        print(f"note: not using calibration {cal_path}: {'; '.join(reasons)}; calibrating on this "
              "machine first", file=sys.stderr)
    return bool(reasons)


def _report(ms, fit: bool, quick: bool, threads: int, device, cal: dict, cal_path: Path):
    """Predicted against measured: fitted on the runs themselves (`fit`), else with the calibration."""
    import numpy as np

    from sparq_sim.calibration import fit as fitting
    from sparq_sim.calibration import store
    from sparq_sim.machine import cpu_model
    from sparq_sim.validation import core
    if fit:
        return core.validate(ms, fit=True, label="local (fitted on the validation runs themselves)")
    pred = fitting.predict_times(ms, device, store.values(cal), threads_default=threads)
    measured = np.array([m.duration_s for m in ms])
    return core.Report(ms, pred, np.abs(pred - measured) / measured * 100, core.speedups(ms, measured),
                       core.speedups(ms, pred), {"local": f"calibration {cal_path.name}: {cal['meta'].get('fitted_on')}"},
                       {}, f"validate --local{' --quick' if quick else ''}: {cpu_model()}, {threads} threads")


def run_local(*, out, quick=False, calibrate=False, fit=False, threads=None, plot=None, calibration=None):
    """The whole --local run; writes all its results at the end, or none of them."""
    from sparq_sim.calibration import store
    from sparq_sim.calibration.local import local_device
    from sparq_sim.machine import cores
    from sparq_sim.outputs import check_output_folder, check_output_path
    from sparq_sim.validation import local_files

    if not out:
        raise UserError("--local needs --out FOLDER for its results")
    out = check_output_folder(out)
    if plot:
        check_output_path(plot, flag="--plot")
    threads = threads or cores()
    cal_path = Path(calibration) if calibration else store.HERE / "local-cpu.toml"
    cal_rows = []
    if not calibrate and _needs_calibrating(cal_path, threads):
        calibrate = True
    if calibrate:
        import tempfile
        tmp_cal = Path(tempfile.mkdtemp()) / "local-cpu.toml"
        _, _, cal_rows, rows, notes, rates = calibrate_local(threads, quick, tmp_cal, also=validation_cases(quick))
        cal_path = tmp_cal
    cal = store.load(cal_path)
    if not cal_rows:
        rows, notes, rates = measure(validation_cases(quick), threads, quick, "validating ")
    local_device.cache_clear()
    # predicted at the stream rate the constants are relative to, with the framework matmul rate of
    # these rounds
    device = with_framework_matmul(local_device(float(cal["bandwidth_Bps"]), str(cal["meta"].get("bandwidth_source", ""))),
                                   rates.matmul)
    # the machine as the runs found it (with a calibration's rounds, the device's own figures)
    machine = with_framework_matmul(local_device(*rates.stream), rates.matmul)
    report = _report(to_measurements(rows), fit, quick, threads, device, cal, cal_path)
    local_files.write_all(out, plot, report, rows, _environment(threads, device), notes,
                          calibration_rows=cal_rows, calibration_path=cal_path, machine=machine)
    return report


def with_framework_matmul(device, matmul):
    """`device` with the framework's measured matmul read rate among its [calibration] extras (the
    calibrated model's reference for the BLAS families; recorded in machine.toml beside the runs)."""
    if matmul is None:
        return device
    from dataclasses import replace

    from sparq_sim.hardware import FRAMEWORK_MATMUL
    from sparq_sim.schema import Figure
    bps, how = matmul
    return replace(device, calibration={**device.calibration, FRAMEWORK_MATMUL: Figure(float(bps), "measured", how)})


def _environment(threads, device) -> dict:
    import platform

    import torch

    from sparq_sim.kernels.timing import steady_allocator
    from sparq_sim.machine import cpu_model
    return {"cpu": cpu_model(), "threads": threads, "allocator": steady_allocator(),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "bandwidth_GBps": device.bandwidth_Bps.value / 1e9, "bandwidth_source": device.bandwidth_Bps.source, "date": time.strftime("%Y-%m-%d %H:%M")}
