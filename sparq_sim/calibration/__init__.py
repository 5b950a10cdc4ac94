"""Calibration: implementation constants fitted from measurements, stored as data, and the
calibrated timer (``--timing calibrated``). See docs/validation.md.

* ``model``: the cost model (phases -> time per call) and its constants;
* ``fit``: least-squares fit of the constants to measurement rows (scipy);
* ``store``: the calibration files in this folder and the family rule for unmeasured devices;
* ``timer``: ``CalibratedTimer(device)``;
* ``local``: this machine as a Device (measured bandwidth) for ``validate --local``;
* ``calibrate(rows, device, path, command)``: fit and write a calibration file.
"""

from __future__ import annotations


def calibrate(rows, device, path, *, command: str, fitted_on: str, family: str, threads_default=None,
              meta: dict | None = None) -> tuple[dict, dict]:
    """Fit constants on measurement rows and write them, with their provenance (and `meta`, extra
    [meta] entries such as the CPU model), to `path`."""
    from sparq_sim.calibration import fit as fitting
    from sparq_sim.calibration import store
    from sparq_sim.calibration.model import features
    from sparq_sim.implementations.published_common import kernel_phases
    from sparq_sim.validation.io import atomic_write_text

    spec = fitting.CPU_SPEC if device.kind == "cpu" else fitting.GPU_SPEC
    params, report = fitting.fit(rows, device, spec=spec, threads_default=threads_default)
    source = f"fitted on {fitted_on} ({len(rows)} rows) by `{command}` on {store.today()}"
    sources = {k: ("fitted", source) for k in params}
    if device.kind == "cpu":
        sources["overlap_p"] = ("derived", "fixed at 1 on CPUs: the host is the device, host and work times add")
        if "per_thread_bw" in params:
            sources["per_thread_bw"] = ("derived", "measured read bandwidth / threads it was measured with; "
                                                   + device.bandwidth_Bps.source)
    # Host cost per launch, for implementation models without a fitted kernel of their own:
    # the median over fitted kernels of host time per launch.
    per_launch = []
    for kern in sorted({m.kernel for m in rows}):
        m = next(r for r in rows if r.kernel == kern)
        n = sum(p.launches for p in kernel_phases(kern, m.workload()))
        if f"host_s.{kern}" in params and n:
            per_launch.append(params[f"host_s.{kern}"] / n)
    if per_launch:
        import statistics
        params["host_op_s"] = statistics.median(per_launch)
        sources["host_op_s"] = ("derived", f"median over fitted kernels of host_s / launches; {source}")
    meta = {**(meta or {}), "fitted_on": fitted_on, "rows": len(rows), "command": command, "date": store.today(),
            "rms_log_error": report["rms_log_error"], "median_abs_pct_error_in_sample": report["median_abs_pct_error"],
            "at_bounds": ", ".join(report["at_bounds"])}
    text = store.dumps(device.name, "nvidia-gpu" if device.kind == "gpu" else family, params, sources, meta,
                       device.bandwidth_Bps.value)
    atomic_write_text(path, text)
    return params, report
