"""``validate --local``: run this project's kernels here, predict the same cases, compare.

Kernels (via ``sparq_sim.kernels``): the fast CPU kernels (``attn-cpu``, ``sparq-attn-cpu``)
when the ``cpu`` impl is installed, and the replicas of the published eager PyTorch kernels
(``attn-torch``, ``attn-nn``, ``sparq-attn-torch``, ``sparq-attn-torch-oneK``).

Validation grid: B = 1, 8 heads, d_h = 128, float32, S in {1k, 4k, 16k, 64k},
r in {8, 16, 32} x k in {64, 512, S/16} (``--quick``: (r, k) in {(8, 64), (16, S/16), (32, 512)}).
Calibration grid (``--calibrate``, or when no calibration of this CPU exists; the same with
``--quick``): S in {512, 2k, 8k, 32k}, r in {4, 24, 64}, k in {128, 1024} (k <= S): none of these
is a validation case; S = 512 is host-bound and pins the per-call host times.

Timing: inputs rotated over copies that together exceed twice the LLC, and the caches evicted
(a read of 2 x LLC, untimed) before every timed call, since SparQ calls touch too little of each
copy for rotation alone to keep them cold; warm-up, repeats, median; ``ROUNDS`` rounds over all
cases, keeping each case's fastest round median (a burst of other work on the shared VM hits one
round). With ``--calibrate`` the calibration and validation cases share those rounds, so both are
measured under the same machine conditions (this VM's bandwidth and page-fault cost drift).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from sparq_sim.errors import UserError

HEADS, HEAD_DIM, BATCH, DTYPE = 8, 128, 1, "float32"
ROUNDS = 3  # interleaved timing rounds per case; the fastest round's median is kept
SEQS = (1024, 4096, 16384, 65536)
CAL_SEQS = (512, 2048, 8192, 32768)  # 512: host-bound, pins the per-call host times
DENSE = ("attn-torch", "attn-nn", "attn-cpu")
SPARQ = ("sparq-attn-torch", "sparq-attn-torch-oneK", "sparq-attn-cpu")
IMPL = {"attn-torch": "torch-eager", "attn-nn": "torch-sdpa", "attn-cpu": "cpu",
        "sparq-attn-torch": "torch-eager", "sparq-attn-torch-oneK": "torch-eager-onek", "sparq-attn-cpu": "cpu"}


def validation_cases(quick: bool) -> list[tuple]:
    cases = []
    for S in SEQS:
        rk = [(8, 64), (16, S // 16), (32, 512)] if quick else \
             [(r, k) for r in (8, 16, 32) for k in (64, 512, S // 16)]
        rk = sorted({(r, min(k, S)) for r, k in rk})
        cases += [(kern, S, None, None) for kern in DENSE]
        cases += [(kern, S, r, k) for r, k in rk for kern in SPARQ]
    return cases


def calibration_cases(quick: bool) -> list[tuple]:
    cases = []
    for S in CAL_SEQS:
        cases += [(kern, S, None, None) for kern in DENSE]
        # the whole (r, k) grid even with --quick: every later prediction rests on these constants
        rk = sorted({(r, min(k, S)) for r in (4, 24, 64) for k in (128, 1024)})
        cases += [(kern, S, r, k) for r, k in rk for kern in SPARQ]
    return cases


def _available(kernels) -> tuple[set, list]:
    """Kernel labels that run here, and notes on those that do not."""
    import torch
    from sparq_sim.kernels import dense_attention, sparq_attention
    ok, notes = set(), []
    q = torch.randn(1, 2, 64)
    K = torch.randn(1, 2, 256, 64)
    V = torch.randn(1, 2, 256, 64)
    for kern in kernels:
        try:
            if kern.startswith("attn"):
                dense_attention(q, K, V, impl=IMPL[kern])
            else:
                sparq_attention(q, K, V, r=8, k=32, K_t=K.transpose(-1, -2).contiguous(), impl=IMPL[kern])
            ok.add(kern)
        except Exception as exc:  # a missing optional kernel is reported, not fatal
            notes.append(f"{kern} skipped: {type(exc).__name__}: {exc}")
    return ok, notes


class _Inputs:
    """Copies of (q, K, V, K_t, v_mean) rotated between calls so the caches start cold."""

    def __init__(self, S: int, llc: int):
        from sparq_sim.kernels.profiling import Case, make_inputs
        case = Case(batch=BATCH, heads=HEADS, kv_heads=HEADS, seq=S, head_dim=HEAD_DIM, r=1, k=1, dtype=DTYPE)
        per = 3 * BATCH * HEADS * S * HEAD_DIM * 4
        self.n = max(1, min(16, math.ceil(2 * llc / per) + 1))
        self.sets = [make_inputs(case, "cpu", S * 16 + i) for i in range(self.n)]
        self.i = 0

    def next(self):
        self.i = (self.i + 1) % self.n
        return self.sets[self.i]


def _fn(kern, r, k, inputs):
    from sparq_sim.kernels import dense_attention, sparq_attention
    impl = IMPL[kern]
    if r is None:
        def call():
            q, K, V, _, _ = inputs.next()
            return dense_attention(q, K, V, impl=impl)
    else:
        def call():
            q, K, V, K_t, vm = inputs.next()
            return sparq_attention(q, K, V, r=r, k=k, K_t=K_t, v_mean=vm, impl=impl)
    return call


class _Flush:
    """Evicts the caches between timed calls (untimed): reads a buffer of 2 x LLC.

    Rotating input copies alone does not keep the caches cold for SparQ cases, which touch a small
    part of each copy (r rows of K_t, k rows of K and V): the touched bytes of all copies can fit
    in the LLC. The model charges every byte at DRAM bandwidth, as in a decoding step, where the
    other layers' weights and caches stream through between two calls of one layer's attention.
    """

    def __init__(self, llc: int):
        import torch
        self.buf = torch.ones(max(2 * llc, 64 * 1024 ** 2) // 4, dtype=torch.float32)

    def __call__(self):
        self.buf.sum()


def _time(call, flush, budget_s: float, max_reps: int) -> tuple[float, float, int, int]:
    """(median, stderr, reps, warmup) of one call, caches evicted (`flush`) before each timed call."""
    warm = 2
    for _ in range(warm):
        call()
    times = []
    t_end = time.perf_counter() + budget_s
    while len(times) < max_reps and (len(times) < 5 or time.perf_counter() < t_end):
        flush()
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    q1, q3 = times[n // 4], times[(3 * n) // 4]
    return times[n // 2], (q3 - q1) / 1.349 / math.sqrt(n), n, warm


def measure(cases, threads: int, quick: bool, what: str) -> tuple[list, list]:
    """Run the cases; returns measurement rows (schema dicts, in the order of `cases`) and notes.

    ``ROUNDS`` rounds, each over every case of every S (ordered by S, every other round backwards),
    with all inputs kept alive: a slow spell
    of this shared VM (bandwidth drift, costlier page faults) hits one round of all cases alike,
    and each case keeps its fastest round's median. Calibration and validation cases passed
    together are therefore measured under the same conditions.
    """
    import torch
    from sparq_sim.machine import cpu_model, llc_bytes
    torch.set_num_threads(threads)
    try:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except Exception:
        pass
    from sparq_sim.kernels.timing import steady_allocator
    steady_allocator()
    ok, notes = _available(sorted({c[0] for c in cases}))
    cases = [c for c in cases if c[0] in ok]
    device_name = f"local: {cpu_model()} ({threads} threads)"
    llc = llc_bytes()
    flush = _Flush(llc)
    budget = 0.45 if quick else 0.8  # seconds per case over all rounds
    max_reps = 45 if quick else 90  # per case over all rounds; the time budget stops long calls sooner
    inputs = {S: _Inputs(S, llc) for S in sorted({c[1] for c in cases})}
    best: dict = {}
    total, t0 = len(cases), time.perf_counter()
    # by S, so that calibration (512, 2k, 8k, 32k) and validation (1k, 4k, 16k, 64k) sizes alternate,
    # and every other round backwards, so that a drift within a round biases neither set
    by_seq = sorted(cases, key=lambda c: c[1])
    from sparq_sim.progress import progress
    bar = progress(total=ROUNDS * total, desc=what.strip(), unit="case")
    for rnd in range(ROUNDS):
        for i, c in enumerate(by_seq if rnd % 2 == 0 else by_seq[::-1]):
            kern, S, r, k = c
            bar.set_postfix_str(f"{kern} S={S} r={r or '-'} k={k or '-'}", refresh=False)
            res = _time(_fn(kern, r, k, inputs[S]), flush, budget / ROUNDS, max(5, max_reps // ROUNDS))
            bar.update(1)
            if c not in best or res[0] < best[c][0]:
                best[c] = (res[0], res[1], res[2] * ROUNDS, res[3])
    del inputs
    bar.close()
    print(f"{what.strip()}: {total} cases x {ROUNDS} rounds in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    rows = []
    for c in cases:
        kern, S, r, k = c
        med, se, reps, warm = best[c]
        rows.append({"device_name": device_name, "device": "cpu", "dtype": DTYPE, "n_head": HEADS,
                     "head_dim": HEAD_DIM, "sequence_length": S, "batch_size": BATCH, "kernel": kern,
                     "r": "" if r is None else r, "k": "" if k is None else k,
                     "store_k_twice": "false" if kern.endswith("oneK") or r is None else "true",
                     "duration_s": repr(med), "duration_stderr_s": repr(se), "reps": reps, "warmup": warm,
                     "torch_version": torch.__version__})
    return rows, notes


def _save_runs(rows, path) -> None:
    import csv
    import io

    from sparq_sim.validation.io import atomic_write_text
    from sparq_sim.validation.measurements import COLUMNS
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _rows_to_measurements(rows):
    from sparq_sim.validation.measurements import parse_rows
    return parse_rows([{k: str(v) for k, v in r.items()} for r in rows], "local measurements")


def calibrate_local(threads: int, quick: bool, path, also=()) -> tuple[dict, dict, list, list, list]:
    """Run the calibration microbenchmarks and write a local calibration file.

    Cases in `also` (the validation cases) are measured in the same rounds, so calibration and
    validation see the same machine conditions; they are returned, never fitted on.
    Returns (params, fit report, calibration rows, rows of `also`, notes)."""
    from sparq_sim.calibration import calibrate
    from sparq_sim.calibration.local import local_device
    from sparq_sim.kernels.timing import read_bandwidth
    from sparq_sim.machine import cpu_model
    bw, src = read_bandwidth()
    local_device.cache_clear()
    device = local_device(bw, src)
    src = device.bandwidth_Bps.source
    cal_cases = calibration_cases(quick)
    all_rows, notes = measure(cal_cases + [c for c in also if c not in cal_cases], threads, quick,
                              "measuring  " if also else "calibrating")
    labels = {(c[0], c[1], c[2], c[3]) for c in cal_cases}
    key = lambda row: (row["kernel"], row["sequence_length"], row["r"] or None, row["k"] or None)
    rows = [row for row in all_rows if key(row) in labels]
    other = [row for row in all_rows if key(row) not in labels]
    ms = _rows_to_measurements(rows)
    params, rep = calibrate(ms, device, path, command=f"sparq-sim validate --local --calibrate"
                                                      f"{' --quick' if quick else ''}",
                            fitted_on=f"local calibration microbenchmarks ({cpu_model()}, {threads} threads)",
                            family="cpu", threads_default=threads,
                            # what identifies this machine (calibration_mismatch), and the bandwidth's source
                            meta={**machine_facts(), "threads": threads, "bandwidth_source": src})
    return params, rep, rows, other, notes


BANDWIDTH_TOLERANCE = 0.25  # a stored calibration is reused while this machine reads within 25% of its bandwidth


def machine_facts() -> dict:
    """What identifies the machine a local calibration was fitted on, as stored in its [meta]."""
    from sparq_sim.machine import cores, cpu_model, llc_bytes
    return {"cpu_model": cpu_model(), "cores": cores(), "llc_bytes": llc_bytes()}


def calibration_mismatch(cal: dict, facts: dict, measure_bandwidth) -> list[str]:
    """Why the calibration `cal` was not fitted on this machine (empty list: it was).

    CPU model, cores and LLC size must equal this machine's (`facts`, as
    ``machine_facts`` gives them; a calibration that does not record one cannot be matched), and
    the read bandwidth measured now (``measure_bandwidth()``, called only when the rest match) must
    lie within BANDWIDTH_TOLERANCE of the one it was fitted with: the same CPU model string on a
    different host, or the same VM on a slower day, gives other constants.
    """
    meta = cal.get("meta", {}) or {}
    reasons = []
    for key, what in (("cpu_model", "CPU"), ("cores", "cores"), ("llc_bytes", "last-level cache bytes")):
        if key not in meta:
            reasons.append(f"it does not record the {what} it was fitted with")
        elif str(meta[key]) != str(facts[key]):
            reasons.append(f"fitted with {what} {meta[key]}, this run has {facts[key]}")
    if reasons:
        return reasons
    stored = float(cal["bandwidth_Bps"])
    now = float(measure_bandwidth())
    if abs(now / stored - 1) > BANDWIDTH_TOLERANCE:
        reasons.append(f"fitted at {stored / 1e9:.1f} GB/s read bandwidth, this machine reads "
                       f"{now / 1e9:.1f} GB/s now (more than {BANDWIDTH_TOLERANCE:.0%} apart)")
    return reasons


def run_local(*, out, quick=False, calibrate=False, fit=False, threads=None, plot=None, calibration=None):
    """The whole --local run; writes all its results at the end, or none of them."""
    import json

    from sparq_sim.calibration import store
    from sparq_sim.calibration.local import local_device
    from sparq_sim.kernels.timing import read_bandwidth
    from sparq_sim.machine import cores, cpu_model
    from sparq_sim.outputs import OutputSet, check_output_folder, check_output_path
    from sparq_sim.validation import core

    if not out:
        raise UserError("--local needs --out FOLDER for its results")
    out = check_output_folder(out)
    if plot:
        check_output_path(plot, flag="--plot")
    threads = threads or cores()
    cal_path = Path(calibration) if calibration else store.HERE / "local-cpu.toml"
    cal_rows = []
    tmp_cal = None
    if not calibrate:
        if not cal_path.is_file():
            reasons = [f"there is no calibration at {cal_path}"]
        else:
            reasons = calibration_mismatch(store.load(cal_path), machine_facts(),
                                           lambda: read_bandwidth()[0])
        if reasons:
            print(f"note: not using calibration {cal_path}: {'; '.join(reasons)}; calibrating on this "
                  "machine first", file=sys.stderr)
            calibrate = True
    if calibrate:
        import tempfile
        tmp_cal = Path(tempfile.mkdtemp()) / "local-cpu.toml"
        _, _, cal_rows, rows, notes = calibrate_local(threads, quick, tmp_cal, also=validation_cases(quick))
        cal_path = tmp_cal
    cal = store.load(cal_path)
    local_device.cache_clear()
    device = local_device(float(cal["bandwidth_Bps"]), str(cal["meta"].get("bandwidth_source", "")))
    if not cal_rows:
        rows, notes = measure(validation_cases(quick), threads, quick, "validating ")
    ms = _rows_to_measurements(rows)
    if fit:
        report = core.validate(ms, fit=True, label="local (fitted on the validation runs themselves)")
    else:
        from sparq_sim.calibration import fit as fitting
        params = store.values(cal)
        pred = fitting.predict_times(ms, device, params, threads_default=threads)
        import numpy as np
        measured = np.array([m.duration_s for m in ms])
        report = core.Report(ms, pred, np.abs(pred - measured) / measured * 100, core.speedups(ms, measured),
                             core.speedups(ms, pred), {"local": f"calibration {cal_path.name}: {cal['meta'].get('fitted_on')}"},
                             {}, f"validate --local{' --quick' if quick else ''}: {cpu_model()}, {threads} threads")
    # ---- write everything at the end, all files or none
    import csv
    import io
    with OutputSet() as outputs:
        _save_runs(rows, outputs.staged(out / "results.csv"))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["kernel", "sequence_length", "r", "k", "measured_s", "predicted_s", "abs_pct_error"])
        for m, p, e in zip(report.rows, report.predicted, report.errors):
            w.writerow([m.kernel, m.seq, m.r or "", m.k or "", repr(m.duration_s), repr(float(p)), f"{e:.2f}"])
        outputs.write_text(out / "predictions.csv", buf.getvalue())
        if cal_rows:
            _save_runs(cal_rows, outputs.staged(out / "calibration-runs.csv"))
            outputs.write_text(out / "local-cpu.toml", cal_path.read_text())
        env = _environment(threads, device)
        d = report.to_dict()
        d["environment"] = env
        d["notes"] = notes
        outputs.write_text(out / "report.json", json.dumps(d, indent=2) + "\n")
        summary = (f"{report.label}\n\n{core.markdown_summary(report)}\n\n"
                   f"Environment: {env['cpu']}, {env['threads']} threads, torch {env['torch']}, "
                   f"read bandwidth {env['bandwidth_GBps']:.1f} GB/s ({env['bandwidth_source']}); "
                   f"allocator: {env['allocator']}.\n")
        if notes:
            summary += "\nNotes: " + "; ".join(notes) + "\n"
        outputs.write_text(out / "summary.md", summary)
        core.plot(report, outputs.staged(plot or out / "validate.png"))
    return report


def _environment(threads, device) -> dict:
    import platform

    import torch

    from sparq_sim.kernels.timing import steady_allocator
    from sparq_sim.machine import cpu_model
    return {"cpu": cpu_model(), "threads": threads, "allocator": steady_allocator(),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "bandwidth_GBps": device.bandwidth_Bps.value / 1e9, "bandwidth_source": device.bandwidth_Bps.source, "date": time.strftime("%Y-%m-%d %H:%M")}
