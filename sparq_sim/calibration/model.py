"""The calibrated cost model: phases -> time per call, implementation constants times device physics.

Constants (``sparq_sim.calibration.constants``) describe how an implementation's kernels are built;
every rate is derived from the device's own hardware file, so constants fitted on one device
predict another with nothing rescaled. For one call (a list of phases) on a device:

    device time of a phase  g = max(memory, scattered loads, top-k, compute) + launches * launch_s * launch_factor
        memory          = sum over accesses of moved bytes / (sustained bandwidth * eff[pattern] * bw_factor[family]),
                          the LLC bandwidth instead when the call repeats on inputs that fit in the LLC,
                          and for a row-parallel kernel with P programs on U units at least
                          ceil(P / (U * R)) * moved bytes / P / (bytes_in_flight[family] / DRAM latency)
                          (Little's law, in waves of U * R programs; R: programs a unit holds at
                          once, families.resident_programs; on CPUs the threads hold one each)
                          + ceil(P / U) * tile flops / P / (peak[dtype] / U * tile_eff[family])   (each
                          program's own arithmetic, query rows padded to its tile's, between its loads)
        scattered loads = loads / (U * clock * issue_per_cycle[family])         framework gathers, or
                          loads / (U * lanes * clock * issue_per_lane[family])  inductor's gathers (GPUs:
                                                                                lanes = load/store units per unit), or
                          loads * sector / (LLC bandwidth * llc_eff[family])    fused gathers (one sector each)
                          and for a row-parallel kernel at least ceil(P / (U * R)) * loads / P / (clock * row_issue_per_cycle)
        top-k           = ranked elements / (min(rows, U * topk_programs_per_unit) * clock * topk_per_cycle)
        compute         = flops / (peak[dtype] * compute_eff[family])
    host time           h = (host_ops[kernel] + extra ops * host_ops_per_launch) * host_op_s
                          (dispatch of the call's framework ops; extra: shape-dependent paths such as
                          torch.topk's multi-block select)
    time per call       T = sync_s + (h^p + G^p)^(1/p),   G = sum of g over phases

The smooth maximum (exponent p) says the host issues work asynchronously: a call is host-bound
at small sizes, device-bound at large ones, partly overlapped between. On CPUs the host *is* the
device: p = 1 (plain sum), units are the threads (at most the cores), and bandwidth is
min(sustained * eff, threads * per_thread_bw * eff), sustained being the measured stream rate
here and datasheet x achievable fraction elsewhere. The framework's BLAS calls (``eager-matmul``,
``sdpa-nn``) draw their share of the machine's framework matmul rate instead (its math library's
rate on that core; ``framework_matmul_rate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sparq_sim.calibration.constants import Constants
from sparq_sim.errors import UserError
from sparq_sim.hardware import FRAMEWORK_MATMUL
from sparq_sim.implementations.families import ScatterBound, is_blas, resident_programs, scatter_bound
from sparq_sim.traffic import GATHER, SPARSE_ROWS, STREAM

PATTERN_INDEX = {STREAM: 0, GATHER: 1, SPARSE_ROWS: 2}


@dataclass
class CallFeatures:
    """Phase counts of many calls, as flat arrays (one entry per phase), for fast evaluation."""

    call: np.ndarray          # index of the call each phase belongs to
    n_calls: int
    bytes: np.ndarray         # (n_phases, 3): moved bytes by pattern
    rows: np.ndarray          # parallel rows (0: not row-limited)
    row_family: list          # family of each phase (which per-family constants apply)
    scattered: np.ndarray
    topk: np.ndarray
    flops: np.ndarray
    launches: np.ndarray
    kernels: list = field(default_factory=list)   # kernel label of each call
    threads: np.ndarray = None                     # per call (CPU), or None
    scatter_kind: list = None                      # per phase: "" or a kind with its own CPU scattered rate
    topk_rows: np.ndarray = None                   # per phase: rows a top-k pass ranks (one program each)
    repeated: np.ndarray = None                    # per call: timed on the same inputs, no cache flush between
    extra_ops: np.ndarray = None                   # per phase: host ops beyond the kernel's fitted host_ops
    tile_flops: np.ndarray = None                  # per phase: a row-parallel kernel's padded tile arithmetic
    tile_dtype: list = None                        # per phase: its dtype ("" where none)


def features(calls: list, granularity: int, kernels: list | None = None,
             threads: list | None = None, *, whole_sparse_rows: bool = False, repeated=None) -> CallFeatures:
    """Flatten the phases of each call (a list of phase lists).

    ``whole_sparse_rows`` (CPUs): sparse-row reads walk the rows in position order, so the core's
    stream prefetchers fetch every line of every row whatever r is; they cost whole rows (measured
    here: the K-once step 1 at S = 32k took the same time for r = 4 and r = 24, though r = 4
    touches under half the lines). GPUs have no such prefetcher: only the sectors touched move.
    """
    call, by, rows, fam, sc, tk, fl, la, sk, tr, xo = [], [], [], [], [], [], [], [], [], [], []
    tf, td = [], []
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
            tr.append(getattr(p, "topk_rows", 0))
            xo.append(getattr(p, "extra_host_ops", 0))
            tf.append(getattr(p, "tile_flops", 0.0))
            td.append(getattr(p, "tile_dtype", ""))
            fl.append(p.flops)
            la.append(p.launches)
    return CallFeatures(np.array(call, dtype=int), len(calls), np.array(by, dtype=float).reshape(-1, 3),
                        np.array(rows, dtype=float), fam, np.array(sc, dtype=float), np.array(tk, dtype=float),
                        np.array(fl, dtype=float), np.array(la, dtype=float), list(kernels or []),
                        None if threads is None else np.array(threads, dtype=float), sk,
                        np.array(tr, dtype=float),
                        np.zeros(len(calls), bool) if repeated is None else np.array(repeated, dtype=bool),
                        np.array(xo, dtype=float), np.array(tf, dtype=float), td)


def _family_index(f: CallFeatures) -> tuple[list, np.ndarray]:
    """Distinct (family, scatter kind) pairs of the phases and each phase's index into them (cached)."""
    cached = getattr(f, "_family_index", None)
    if cached is None:
        kinds = f.scatter_kind or [""] * len(f.row_family)
        keys = sorted({(str(fam), kind or "") for fam, kind in zip(f.row_family, kinds)})
        where = {k: i for i, k in enumerate(keys)}
        cached = (keys, np.array([where[(str(fam), kind or "")] for fam, kind in zip(f.row_family, kinds)], dtype=int))
        f._family_index = cached
    return cached


def _per_family(c: Constants, base: str, f: CallFeatures) -> np.ndarray:
    keys, index = _family_index(f)
    return np.array([c.value(base, fam) for fam, _ in keys], dtype=float)[index]


def framework_matmul_rate(f: CallFeatures, c: Constants, device) -> np.ndarray | None:
    """Per phase, the read rate of the framework's matrix products on a CPU (bytes/s): the
    machine's measured figure (``calibration.framework_matmul_Bps``, timed with all its threads,
    scaled to the call's share of them), else its bandwidth for the call's threads times the fitted
    machines' ``framework_matmul_share``; None where neither is known (the BLAS families then
    take their share of the stream rate)."""
    figure = device.calibration.get(FRAMEWORK_MATMUL)
    units = device.compute_units.value
    threads = f.threads[f.call] if f.threads is not None else np.full(len(f.call), units)
    if figure is not None:
        return figure.value * np.minimum(1.0, threads / units)
    if not c.has("framework_matmul_share"):
        return None
    bandwidth = np.minimum(device.sustained_bandwidth, threads * c.value("per_thread_bw"))
    return bandwidth * c.value("framework_matmul_share")


def llc_resident(f: CallFeatures, device) -> np.ndarray:
    """Per call: repeated on the same inputs and all its bytes fit in the device's LLC, so after the
    first repeat they are served at LLC rather than DRAM bandwidth."""
    if f.repeated is None or not f.repeated.any():
        return np.zeros(f.n_calls, bool)
    per_call = np.bincount(f.call, weights=f.bytes.sum(axis=1), minlength=f.n_calls)
    return f.repeated & (per_call <= device.llc_bytes.value)


def _lanes(device) -> float:
    """Load/store lanes of one of the device's units (GPUs: its hardware file must give them)."""
    if device.load_store_units is None:
        raise UserError(f"device {device.name}: field compute.load_store_units is missing (needed for gathers "
                        "bound by the load/store lanes)")
    return device.load_store_units.value


def tile_time(f: CallFeatures, c: Constants, device) -> np.ndarray:
    """Per phase, the time a row-parallel kernel's programs spend on their own tiles' arithmetic
    (query rows padded to the tile's: ``tile_flops``), serial with their loads: P programs spread
    over U units, the busiest unit computing ceil(P / U) programs' tiles on its tensor cores
    (peak / U of the tile's dtype) at the family's ``tile_eff``."""
    out = np.zeros(len(f.row_family))
    tiled = [i for i in np.flatnonzero(f.tile_flops) if f.tile_dtype[i]] if f.tile_flops is not None else []
    if not tiled:
        return out
    units = device.compute_units.value
    unit_rate = np.array([device.peak(f.tile_dtype[i]) / units for i in tiled])
    programs = np.maximum(f.rows[tiled], 1)
    busiest = np.ceil(programs / units) * f.tile_flops[tiled] / programs
    out[tiled] = busiest / (unit_rate * _per_family(c, "tile_eff", f)[tiled])
    return out


def evaluate(f: CallFeatures, constants, device, *, breakdown: bool = False):
    """Time per call (array), from features, constants and the device's physics; with ``breakdown``
    also per-phase (memory, scattered, top-k, compute, device time) and per-call host and device totals."""
    c = constants if isinstance(constants, Constants) else Constants(constants)
    cpu = device.kind == "cpu"
    units = device.compute_units.value
    clock = device.clock_hz.value
    n = len(f.row_family)
    if cpu and f.threads is not None:
        # threads beyond the cores add nothing; fewer threads use fewer units
        units_used = np.minimum(f.threads[f.call], units)
    else:
        units_used = np.full(n, units)
    eff = np.array([c.value("eff.stream"), c.value("eff.gather"), c.value("eff.sparse_rows")])
    resident = llc_resident(f, device)
    source_bw = np.where(resident[f.call], device.llc_bandwidth_Bps.value, device.sustained_bandwidth)
    per_pattern_bw = source_bw[:, None] * eff[None, :]
    if cpu and f.threads is not None:
        # each thread draws at most per_thread_bw x the pattern's efficiency
        th = f.threads[f.call][:, None]
        per_pattern_bw = np.minimum(per_pattern_bw, th * c.value("per_thread_bw") * eff)
    # code of different origins (a BLAS library, a compiler's generated kernels, the framework's
    # element-wise loops) draws different shares of the same memory's bandwidth
    share = _per_family(c, "bw_factor", f)
    per_pattern_bw = per_pattern_bw * share[:, None]
    if cpu:
        # ... except the framework's BLAS calls on a CPU, whose rate is its math library's on that core:
        # a share of the framework's own measured matmul read rate
        reference = framework_matmul_rate(f, c, device)
        if reference is not None:
            keys, index = _family_index(f)
            blas = np.array([is_blas(fam) for fam, _ in keys], dtype=bool)[index]
            per_pattern_bw = np.where(blas[:, None], (reference * share)[:, None], per_pattern_bw)
    memory = (f.bytes / per_pattern_bw).sum(axis=1)
    total_bytes = f.bytes.sum(axis=1)

    # row-parallel kernels: P programs, at most R of them on each of U units at once (on CPUs: one
    # per thread), each bounded by Little's law
    keys, index = _family_index(f)
    if cpu:
        programs = np.minimum(f.rows, f.threads[f.call]) if f.threads is not None else np.minimum(f.rows, units)
    else:
        warps = device.max_warps_per_unit.value if device.max_warps_per_unit is not None else None
        held = np.array([resident_programs(fam, warps) for fam, _ in keys], dtype=float)[index]
        programs = np.minimum(f.rows, units * held)
    in_flight = _per_family(c, "bytes_in_flight", f)
    limited = f.rows > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        program_bw = in_flight / device.dram_latency_s.value
        # the programs run in waves: the busiest unit (thread) runs ceil(P / held) of them in turn
        launched = np.maximum(f.rows, 1)     # P: every program the kernel launches
        waves = np.ceil(launched / np.maximum(programs, 1))
        per_program = total_bytes / launched
        row_limit = np.where(limited & np.isfinite(program_bw), waves * per_program / program_bw, 0.0)
    if not cpu:
        row_limit = row_limit + tile_time(f, c, device)
    memory = np.maximum(memory, row_limit)

    # scattered element loads: issue-bound (index arithmetic per element), bound by the units'
    # load/store lanes (one indexed load per element, GPUs), or one LLC sector each
    issue = np.array([c.value("issue_per_cycle", f"{fam}.{kind}") if kind and c.has("issue_per_cycle", f"{fam}.{kind}")
                      else c.value("issue_per_cycle", fam) for fam, kind in keys])[index]
    bound = [scatter_bound(fam, kind) for fam, kind in keys]
    cache_bound = np.array([b is ScatterBound.CACHE for b in bound], dtype=bool)[index]
    lane_bound = np.array([b is ScatterBound.LANES and not cpu for b in bound], dtype=bool)[index] & (f.scattered > 0)
    llc_rate = device.llc_bandwidth_Bps.value * _per_family(c, "llc_eff", f) / device.granularity
    rate = np.where(cache_bound, llc_rate, units_used * clock * issue)
    if lane_bound.any():
        rate = np.where(lane_bound, units_used * _lanes(device) * clock * _per_family(c, "issue_per_lane", f), rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        scattered = np.where(f.scattered > 0, f.scattered / rate, 0.0)
        row_issue = _per_family(c, "row_issue_per_cycle", f)
        scattered = np.maximum(scattered, np.where(limited & np.isfinite(row_issue) & (f.scattered > 0),
                                                   waves * f.scattered / launched / (clock * row_issue),
                                                   0.0))

    # top-k: one program per ranked row, at most topk_programs_per_unit of them per unit
    if f.topk.any():
        if cpu:
            topk_programs = units_used
        else:
            rows = f.topk_rows if f.topk_rows is not None else np.zeros(n)
            cap = units * c.value("topk_programs_per_unit")
            topk_programs = np.where(rows > 0, np.minimum(rows, cap), cap)
        topk = f.topk / (topk_programs * clock * c.value("topk_per_cycle"))
    else:
        topk = np.zeros(n)

    compute = f.flops / (device.peak("float32") * _per_family(c, "compute_eff", f))
    if cpu:
        compute = compute * units / units_used
    work = np.maximum.reduce([memory, scattered, topk, compute])
    dev = work + f.launches * device.launch_s.value * c.value("launch_factor")
    G = np.bincount(f.call, weights=dev, minlength=f.n_calls)

    # host: a kernel's own fitted dispatch time, or its launches at the derived per-launch figure
    ops = np.bincount(f.call, weights=f.launches, minlength=f.n_calls)
    kernels = f.kernels or [""] * f.n_calls
    names = sorted(set(kernels))
    own = {k: c.value("host_ops", k) for k in names if k and c.has("host_ops", k)}
    per_launch = c.value("host_ops_per_launch") if len(own) < len(names) else 0.0
    host_ops = np.array([own[k] if k in own else n_ops * per_launch for k, n_ops in zip(kernels, ops)])
    if f.extra_ops is not None and f.extra_ops.any():
        # shape-dependent paths dispatch more ops than the kernel's fitted constant covers
        host_ops = host_ops + np.bincount(f.call, weights=f.extra_ops, minlength=f.n_calls) * \
            c.value("host_ops_per_launch")
    host = host_ops * device.host_op_s.value
    p = c.value("overlap_p")
    T = c.value("sync_s") + (host ** p + G ** p) ** (1.0 / p)
    if not breakdown:
        return T
    return T, {"memory": memory, "scattered": scattered, "topk": topk, "compute": compute, "device": dev,
               "host": host, "G": G, "llc_resident": resident}
