"""Calibration: implementation constants fitted from measurements, stored as data, and the
calibrated timer (``--timing calibrated``). See docs/validation.md.

* ``model``: the cost model (phases -> time per call) and its constants;
* ``fit``: least-squares fit of the constants to measurement rows (scipy);
* ``store``: the calibration files in this folder and which one a device takes;
* ``constants``: the typed constants (specs, validation);
* ``accuracy``: the recorded cross-device errors predict reports;
* ``timer``: ``CalibratedTimer(device)``;
* ``local``: this machine as a Device (measured bandwidth) for ``validate --local``;
* ``calibrate(rows, device, path, command)``: fit and write a calibration file.
"""

from __future__ import annotations


def calibrate(rows, devices, path, *, command: str, fitted_on: str, family: str, threads_default=None,
              meta: dict | None = None) -> tuple[dict, dict]:
    """Fit constants on measurement rows (of one device, or of several: ``devices`` maps hardware
    name -> Device) and write them, with their provenance (and `meta`, extra [meta] entries such as
    the CPU model), to `path`."""
    from sparq_sim.calibration import fit as fitting
    from sparq_sim.calibration import store
    from sparq_sim.outputs import write_text_atomic

    params, report = fitting.fit(rows, devices, threads_default=threads_default)
    if not isinstance(devices, dict):
        devices = {m.hardware: devices for m in rows}
    device = next(iter(devices.values()))
    source = f"fitted on {fitted_on} ({len(rows)} rows) by `{command}` on {store.today()}"
    sources = {k: ("fitted", source) for k in params}
    for k, (low, high) in report.get("unpinned_range", {}).items():
        sources[k] = ("assumed", f"{source}; not pinned by these rows: every value from {low:.4g} to {high:.4g} fits "
                                 f"them within {fitting.FLAT_COST:.1%} of the best cost, so it is the prior brought "
                                 "into that range")
    sources.update(report["fixed_sources"])
    if "per_thread_bw" in params:
        sources["per_thread_bw"] = ("derived", "measured read bandwidth / threads it was measured with; "
                                               + device.bandwidth_Bps.source)
    if "framework_matmul_share" in params:
        sources["framework_matmul_share"] = ("derived", "the fitted machines' framework matmul read rate over their "
                                                        "stream rate (calibration.framework_matmul_Bps / bandwidth_Bps)")
    if "host_ops_per_launch" in params and "host_ops_per_launch" not in report["fitted"]:
        sources["host_ops_per_launch"] = ("derived", f"median over fitted kernels of host_ops / launches; {source}")
    meta = {**(meta or {}), "fitted_on": fitted_on, "devices": ", ".join(sorted(devices)), "rows": len(rows),
            "command": command, "date": store.today(), "rms_log_error": report["rms_log_error"],
            "median_abs_pct_error_in_sample": report["median_abs_pct_error"],
            "at_bounds": ", ".join(report["at_bounds"]), "unpinned": ", ".join(report.get("unpinned", {}))}
    name = device.name if len(devices) == 1 else " + ".join(sorted(devices))
    text = store.dumps(name, "nvidia-gpu" if device.kind == "gpu" else family, device.kind, params, sources, meta,
                       device.bandwidth_Bps.value)
    write_text_atomic(path, text)
    return params, report
