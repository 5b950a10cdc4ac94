"""Fitting the implementation constants of the calibrated model to measurements (scipy).

``fit(measurements, device)`` minimises the squared log ratio of predicted to measured time per
call (``scipy.optimize.least_squares``, soft-L1 loss so a few odd rows do not pull the fit),
over the constants that are not datasheet facts: bandwidth efficiency per access pattern,
per-launch device cost, per-call synchronisation cost, host time per kernel, overlap exponent,
per-row bandwidth of row-parallel fused kernels, scattered-load rates and top-k throughput.
Positive constants are fitted in log space within physical bounds.
"""

from __future__ import annotations

import math

import numpy as np

from sparq_sim.calibration.model import evaluate, features

# name -> (initial, low, high); host_s.<kernel> entries are added per kernel present in the data.
GPU_SPEC = {
    "eff.stream": (0.8, 0.3, 1.0),
    "eff.gather": (0.7, 0.1, 1.0),
    "eff.sparse_rows": (0.7, 0.1, 1.0),
    "gpu_launch_s": (4e-6, 5e-7, 5e-5),
    "sync_s": (2e-5, 1e-6, 5e-4),
    "overlap_p": (3.0, 1.0, 30.0),
    "row_bw.sdpa-flash": (1e10, 1e8, 1e12),
    "row_bw.sdpa-mem-efficient": (1e10, 1e8, 1e12),
    "row_bw.triton": (1e10, 1e8, 1e12),
    "scattered_rate.eager": (5e10, 1e9, 1e13),
    "scattered_rate.compiled": (5e10, 1e9, 1e13),
    "scattered_rate.triton": (5e10, 1e9, 1e13),
    "scattered_row_rate.triton": (2e9, 1e7, 1e12),
    "topk_rate": (5e9, 1e7, 1e13),
}
# CPUs: the host is the device (overlap_p fixed at 1: host and work add up); bandwidth is capped
# by threads * per_thread_bw; compute matters (fp16 KV converted to fp32, eager ops single pass).
CPU_SPEC = {
    "eff.stream": (0.9, 0.2, 1.5),
    "eff.gather": (0.5, 0.02, 1.5),
    "eff.sparse_rows": (0.5, 0.02, 1.5),
    "gpu_launch_s": (5e-6, 1e-7, 1e-3),
    "sync_s": (1e-6, 1e-8, 1e-3),
    "scattered_rate.eager": (1e9, 1e6, 1e12),
    "scattered_rate.eager.lastdim": (1e9, 1e6, 1e12),
    "scattered_rate.fused": (1e9, 1e6, 1e12),
    "topk_rate": (1e9, 1e6, 1e12),
    "compute_eff.eager": (0.2, 1e-4, 1.0),
    "compute_eff.fused": (0.2, 1e-4, 1.0),
    "compute_eff.fused-dense": (0.2, 1e-4, 1.0),
    "compute_eff.sdpa-nn": (0.2, 1e-4, 1.0),
    "scattered_row_rate.fused": (1e9, 1e6, 1e12),
    "bw_factor.eager": (0.7, 0.05, 1.2),
    "bw_factor.sdpa-nn": (0.7, 0.05, 1.2),
}
CPU_FIXED = {"overlap_p": 1.0}
HOST_RANGE = (1e-7, 1e-1)


def _spec_for(measurements, spec: dict, families_present: set) -> dict:
    out = {}
    for name, v in spec.items():
        fam = name.split(".")[1] if name.startswith(("row_bw.", "scattered_rate.", "scattered_row_rate.", "compute_eff.", "bw_factor.")) else None
        if fam is not None and fam not in families_present:
            continue
        out[name] = v
    kernels = sorted({m.kernel for m in measurements})
    for kern in kernels:
        times = [m.duration_s for m in measurements if m.kernel == kern]
        out[f"host_s.{kern}"] = (max(HOST_RANGE[0] * 2, 0.7 * min(times)), *HOST_RANGE)
    return out


def build_calls(measurements):
    """Phase lists, kernel labels and threads of each measurement."""
    from sparq_sim.implementations.published_common import kernel_phases
    calls = [kernel_phases(m.kernel, m.workload()) for m in measurements]
    return calls, [m.kernel for m in measurements], [m.threads for m in measurements]


def call_features(measurements, device, threads_default: int | None = None):
    calls, kernels, threads = build_calls(measurements)
    th = None
    if device.kind == "cpu":
        th = [t or threads_default or int(device.compute_units.value) for t in threads]
    return features(calls, device.granularity, kernels, th, whole_sparse_rows=device.kind == "cpu")


def fit(measurements, device, spec: dict | None = None, fixed: dict | None = None,
        threads_default: int | None = None) -> tuple[dict, dict]:
    """Fitted constants and a report (rows, cost, residual spread) for these measurements."""
    from scipy.optimize import least_squares

    feats = call_features(measurements, device, threads_default)
    families = set(feats.row_family)
    spec = _spec_for(measurements, spec or GPU_SPEC, families)
    fixed = dict(fixed or {})
    if device.kind == "cpu":
        fixed = {**CPU_FIXED, **fixed}
        # The read bandwidth was measured with all `threads` threads: each draws its share (not fitted,
        # it is degenerate with eff.stream on one machine; kept so other thread counts scale).
        th = threads_default or int(device.compute_units.value)
        fixed.setdefault("per_thread_bw", device.bandwidth_Bps.value / th)
    for name in fixed:
        spec.pop(name, None)
    names = list(spec)
    lo = np.log([spec[n][1] for n in names])
    hi = np.log([spec[n][2] for n in names])
    x0 = np.clip(np.log([spec[n][0] for n in names]), lo + 1e-9, hi - 1e-9)
    measured = np.log([m.duration_s for m in measurements])

    def params_of(x):
        p = dict(fixed)
        p.update({n: float(math.exp(v)) for n, v in zip(names, x)})
        return p

    def residuals(x):
        return np.log(evaluate(feats, params_of(x), device)) - measured

    if device.kind == "cpu":
        # CPU fits start far from the optimum (host times vs. memory terms trade off): a plain
        # least-squares pass first, so the robust pass does not stall in its flat far-out region.
        x0 = least_squares(residuals, x0, bounds=(lo, hi), loss="linear", x_scale=1.0, max_nfev=3000).x
    result = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1, x_scale=1.0,
                           max_nfev=3000)
    params = params_of(result.x)
    res = residuals(result.x)
    at_bound = [n for n, v, a, b in zip(names, result.x, lo, hi) if v - a < 1e-3 or b - v < 1e-3]
    report = {"rows": len(measurements), "fitted": names, "fixed": sorted(fixed),
              "rms_log_error": float(np.sqrt(np.mean(res ** 2))),
              "median_abs_pct_error": float(np.median(np.abs(np.expm1(res))) * 100),
              "status": result.message, "nfev": int(result.nfev), "at_bounds": at_bound}
    return params, report


def predict_times(measurements, device, params: dict, threads_default: int | None = None) -> np.ndarray:
    """Predicted duration_s of each measurement with the given constants."""
    return evaluate(call_features(measurements, device, threads_default), params, device)
