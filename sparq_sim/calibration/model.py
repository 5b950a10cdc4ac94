"""The calibrated cost model: phases -> time per call, with fitted implementation constants.

For one call (a list of phases) on a device:

    device time of a phase  g = max(memory, scattered loads, top-k, compute) + launches * gpu_launch_s
        memory          = sum over accesses of moved bytes / (datasheet bandwidth * eff[pattern]),
                          and for row-parallel fused kernels at least moved bytes / (rows * row_bw[family])
                          (few (batch, head) rows cannot draw the whole bandwidth)
        scattered loads = scattered element loads / min(scattered_rate[family], rows * scattered_row_rate[family])
        top-k           = ranked elements / topk_rate
        compute         = flops / (peak[dtype] * compute_eff)
    host time           h = host_s[kernel]                (Python and framework dispatch of all ops)
    time per call       T = sync_s + (h^p + G^p)^(1/p),   G = sum of g over phases

The smooth maximum (exponent p) says the host issues work asynchronously: a call is host-bound
at small sizes, device-bound at large ones, partly overlapped between. On CPUs the host *is*
the device: p = 1 (plain sum) and bandwidth is min(sustained * eff, threads * per_thread_bw * eff),
sustained being the measured stream rate here and datasheet x achievable fraction elsewhere.

Bandwidth efficiencies multiply the target device's datasheet bandwidth, so a device of the
same family with no measurements gets the family's fitted efficiencies and launch costs with its
own datasheet bandwidth (``family_scaled``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sparq_sim.traffic import GATHER, SPARSE_ROWS, STREAM

PATTERN_INDEX = {STREAM: 0, GATHER: 1, SPARSE_ROWS: 2}
ROW_FAMILIES = ("sdpa-flash", "sdpa-mem-efficient", "sdpa-nn", "triton", "fused")
SCATTER_FAMILIES = ("eager", "compiled", "triton", "fused")


@dataclass
class CallFeatures:
    """Phase counts of many calls, as flat arrays (one entry per phase), for fast evaluation."""

    call: np.ndarray          # index of the call each phase belongs to
    n_calls: int
    bytes: np.ndarray         # (n_phases, 3): moved bytes by pattern
    rows: np.ndarray          # parallel rows (0: not row-limited)
    row_family: list          # family name of each phase (for row_bw, scattered rate)
    scattered: np.ndarray
    topk: np.ndarray
    flops: np.ndarray
    launches: np.ndarray
    kernels: list = field(default_factory=list)   # kernel label of each call
    threads: np.ndarray = None                     # per call (CPU), or None
    scatter_kind: list = None                      # per phase: "" or a kind with its own CPU scattered rate


def features(calls: list, granularity: int, kernels: list | None = None,
             threads: list | None = None, *, whole_sparse_rows: bool = False) -> CallFeatures:
    """Flatten the phases of each call (a list of phase lists).

    ``whole_sparse_rows`` (CPUs): sparse-row reads walk the rows in position order, so the core's
    stream prefetchers fetch every line of every row whatever r is; they cost whole rows (measured
    here: the K-once step 1 at S = 32k took the same time for r = 4 and r = 24, though r = 4
    touches under half the lines). GPUs have no such prefetcher: only the sectors touched move.
    """
    call, by, rows, fam, sc, tk, fl, la, sk = [], [], [], [], [], [], [], [], []
    for i, phases in enumerate(calls):
        for p in phases:
            b = [0.0, 0.0, 0.0]
            for a in p.accesses:
                if whole_sparse_rows and a.pattern == SPARSE_ROWS:
                    b[PATTERN_INDEX[a.pattern]] += a.count * math.ceil(a.row_bytes / granularity) * granularity
                else:
                    b[PATTERN_INDEX[a.pattern]] += a.moved_bytes(granularity)
            sk.append(getattr(p, "scatter_kind", ""))
            call.append(i)
            by.append(b)
            rows.append(getattr(p, "rows", 0))
            fam.append(getattr(p, "family", "eager"))
            sc.append(getattr(p, "scattered_loads", 0))
            tk.append(getattr(p, "topk_elements", 0))
            fl.append(p.flops)
            la.append(p.launches)
    return CallFeatures(np.array(call, dtype=int), len(calls), np.array(by, dtype=float).reshape(-1, 3),
                        np.array(rows, dtype=float), fam, np.array(sc, dtype=float), np.array(tk, dtype=float),
                        np.array(fl, dtype=float), np.array(la, dtype=float), list(kernels or []),
                        None if threads is None else np.array(threads, dtype=float), sk)


def _lookup(params: dict, prefix: str, names, default=None) -> np.ndarray:
    out = []
    for n in names:
        key = f"{prefix}.{n}"
        if key in params:
            out.append(params[key])
        elif default is not None:
            out.append(params.get(f"{prefix}.default", default))
        else:
            raise KeyError(key)
    return np.array(out, dtype=float)


def evaluate(f: CallFeatures, params: dict, device, *, breakdown: bool = False):
    """Time per call (array), from features and constants; with ``breakdown`` also per-phase
    (memory, compute, device time) and per-call host and device totals."""
    cpu = device.kind == "cpu"
    # CPU constants are fitted against a measured stream rate, so they scale another CPU's
    # sustained rate (datasheet x achievable fraction); GPU ones were fitted against the datasheet.
    bw = device.sustained_bandwidth if cpu else device.bandwidth_Bps.value
    eff = np.array([params["eff.stream"], params["eff.gather"], params["eff.sparse_rows"]])
    per_pattern_bw = bw * eff                                   # (3,)
    if cpu and f.threads is not None:
        # Each thread draws at most per_thread_bw x the pattern's efficiency (per_thread_bw is the
        # measured bandwidth over the threads it was measured with: only fewer threads are capped).
        th = f.threads[f.call][:, None]
        per_pattern_bw = np.minimum(per_pattern_bw[None, :], th * params["per_thread_bw"] * eff)
    if cpu:
        # CPU code of different origins draws different shares of the measured stream bandwidth
        # (a hand-vectorised streaming loop vs. a framework's batched matrix-vector product):
        # bw_factor.<family> (fitted; 1 where absent, e.g. the reference family).
        fam_bw = np.array([params.get(f"bw_factor.{fam}", 1.0) for fam in f.row_family])
        per_pattern_bw = np.broadcast_to(per_pattern_bw, (len(fam_bw), 3)) * fam_bw[:, None]
    memory = (f.bytes / per_pattern_bw).sum(axis=1)
    total_bytes = f.bytes.sum(axis=1)
    row_bw = np.array([params.get(f"row_bw.{fam}", math.inf) for fam in f.row_family])
    if cpu and f.threads is not None:
        rows_eff = np.minimum(f.rows, f.threads[f.call])
    else:
        rows_eff = f.rows
    limited = (rows_eff > 0) & np.isfinite(row_bw)
    with np.errstate(divide="ignore", invalid="ignore"):
        row_limit = np.where(limited, total_bytes / (np.maximum(rows_eff, 1) * row_bw), 0.0)
    memory = np.maximum(memory, row_limit)
    sc_rate = np.array([params.get(f"scattered_rate.{fam}", params.get("scattered_rate.default", math.inf))
                        for fam in f.row_family])
    if cpu and f.scatter_kind:
        # element gathers of another loop structure (along the contiguous last dim) on CPUs
        sc_rate = np.array([params.get(f"scattered_rate.{fam}.{kind}", r) if kind else r
                            for fam, kind, r in zip(f.row_family, f.scatter_kind, sc_rate)])
    scattered = f.scattered / sc_rate
    # a row-parallel kernel issues its scattered loads from few programs when rows are few
    sc_row = np.array([params.get(f"scattered_row_rate.{fam}", math.inf) for fam in f.row_family])
    with np.errstate(divide="ignore", invalid="ignore"):
        scattered = np.maximum(scattered, np.where(limited & np.isfinite(sc_row),
                                                   f.scattered / (np.maximum(rows_eff, 1) * sc_row), 0.0))
    topk = f.topk / params["topk_rate"]
    ceff = np.array([params.get(f"compute_eff.{fam}", params.get("compute_eff", 1.0)) for fam in f.row_family])
    compute = f.flops / (device.peak("float32") * ceff)
    if cpu and f.threads is not None:
        compute = compute * device.compute_units.value / np.minimum(f.threads[f.call], device.compute_units.value)
        topk = topk * device.compute_units.value / np.minimum(f.threads[f.call], device.compute_units.value)
        scattered = scattered * device.compute_units.value / np.minimum(f.threads[f.call], device.compute_units.value)
    work = np.maximum.reduce([memory, scattered, topk, compute])
    dev = work + f.launches * params["gpu_launch_s"]
    G = np.bincount(f.call, weights=dev, minlength=f.n_calls)
    if f.kernels:
        host = np.array([params.get(f"host_s.{k}", params.get("host_s.default", 0.0)) for k in f.kernels])
    else:
        host = np.full(f.n_calls, params.get("host_s.default", 0.0))
    if not f.kernels or "host_op_s" in params:
        # per-op host cost for kernels without their own fitted constant
        ops = np.bincount(f.call, weights=f.launches, minlength=f.n_calls)
        missing = np.array([f"host_s.{k}" not in params for k in f.kernels]) if f.kernels else np.ones(f.n_calls, bool)
        host = np.where(missing, ops * params.get("host_op_s", 0.0) + params.get("call_s", 0.0), host)
    p = params["overlap_p"]
    T = params["sync_s"] + (host ** p + G ** p) ** (1.0 / p)
    if not breakdown:
        return T
    return T, {"memory": memory, "scattered": scattered, "topk": topk, "compute": compute, "device": dev,
               "host": host, "G": G}
