"""Timing harness for kernels on the local device: warm-up, repeats, median and spread, input
rotation (so timings come from DRAM, not the last-level cache), and the machine's measured
streaming-read bandwidth (cached per CPU model with its date).

API (reused by the validation suite):
    time_call(fn, make_inputs, warmup=3, repeats=21, *, copies=1, sync=None, flush=None,
              budget_s=None) -> TimingResult;  CacheFlush(llc)
    copies_for(bytes_touched_per_call, bytes_per_copy, llc_bytes=None, ...) -> int
    measure_stream_bandwidth(refresh=False) -> (Bps, info)   (kernels.membench.measure_stream, cached)
    read_bandwidth() -> (Bps, how)                            (re-measured, for the local calibration)
    steady_allocator() -> str;  llc_bytes() -> int;  cpu_model() -> str;  environment() -> dict
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass

from sparq_sim.machine import cache_dir, cpu_model, llc_bytes


@dataclass(frozen=True)
class TimingResult:
    """Seconds per call over `n` timed calls."""

    median_s: float
    p10_s: float
    p90_s: float
    min_s: float
    max_s: float
    n: int
    mean_s: float = 0.0
    q1_s: float = 0.0
    q3_s: float = 0.0
    copies: int = 1

    @property
    def iqr_s(self) -> float:
        return self.q3_s - self.q1_s

    @property
    def stderr_s(self) -> float:
        """Standard error of the median from the spread: IQR / 1.349 (a normal's sigma) / sqrt(n)."""
        return self.iqr_s / 1.349 / math.sqrt(self.n)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["iqr_s"] = self.iqr_s
        return out


def _quantile(sorted_vals, p: float) -> float:
    """Linear-interpolation quantile of already sorted values."""
    if len(sorted_vals) == 1:
        return sorted_vals[0]
    x = p * (len(sorted_vals) - 1)
    lo = int(x)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (x - lo)


def summarize(times, copies: int = 1) -> TimingResult:
    t = sorted(times)
    if not t:
        raise ValueError("no timings to summarize")
    return TimingResult(median_s=statistics.median(t), p10_s=_quantile(t, 0.1), p90_s=_quantile(t, 0.9),
                        min_s=t[0], max_s=t[-1], n=len(t), mean_s=statistics.fmean(t),
                        q1_s=_quantile(t, 0.25), q3_s=_quantile(t, 0.75), copies=copies)


def time_call(fn, make_inputs, warmup: int = 3, repeats: int = 21, *, copies: int = 1,
              sync=None, flush=None, budget_s: float | None = None, min_repeats: int = 5) -> TimingResult:
    """Time fn(*args) per call with a monotonic clock: the one harness of the kernels' benchmarks,
    ``sparq-sim profile`` and ``validate --local``.

    make_inputs() returns one argument tuple; it is called `copies` times before timing and the
    calls rotate through the copies (choose copies with :func:`copies_for` so that their total
    exceeds the last-level cache, then every call reads DRAM). `sync` (e.g.
    torch.cuda.synchronize) runs before and after each call. Warm-up calls are not timed.
    `flush` (e.g. a :class:`CacheFlush`) runs, untimed, before every timed call. With `budget_s`,
    `repeats` is the most calls: timing stops sooner once `min_repeats` calls are timed and
    `budget_s` seconds have passed since the warm-up.
    """
    if warmup < 0 or repeats < 1 or copies < 1:
        raise ValueError("need warmup >= 0, repeats >= 1 and copies >= 1")
    inputs = [tuple(make_inputs()) for _ in range(copies)]
    for i in range(warmup):
        fn(*inputs[i % copies])
    if sync:
        sync()
    times = []
    clock = time.perf_counter
    t_end = math.inf if budget_s is None else clock() + budget_s
    while len(times) < repeats and (len(times) < min_repeats or clock() < t_end):
        args = inputs[(warmup + len(times)) % copies]
        if flush:
            flush()
        if sync:
            sync()
        t0 = clock()
        fn(*args)
        if sync:
            sync()
        times.append(clock() - t0)
    return summarize(times, copies)


class CacheFlush:
    """Evicts the caches (untimed, as time_call's `flush`): a read of a buffer of 2 x LLC.

    Rotating input copies alone does not keep the caches cold for calls that touch a small part
    of each copy (SparQ reads r rows of K_t, k rows of K and V): the touched bytes of all copies
    can fit in the LLC. A decoding step is like that too: the other layers' weights and caches
    stream through between two calls of one layer's attention.
    """

    def __init__(self, llc: int):
        import torch
        self.buf = torch.ones(max(2 * llc, 64 * 1024 ** 2) // 4, dtype=torch.float32)

    def __call__(self):
        self.buf.sum()


def copies_for(bytes_touched: float, bytes_per_copy: float, llc: int | None = None, factor: float = 4.0,
               max_copies: int = 64, memory_budget: float = 4e9) -> int:
    """Input copies to rotate through so the bytes the calls touch exceed `factor` x the LLC.

    A call that touches more than factor x LLC needs one copy; otherwise as many as fit in
    `memory_budget` bytes of inputs, at most `max_copies`.
    """
    llc = llc or llc_bytes()
    need = int(-(-factor * llc // max(1.0, bytes_touched)))
    fit = max(1, int(memory_budget // max(1.0, bytes_per_copy)))
    return max(1, min(need, fit, max_copies))


def _threads() -> int:
    try:
        import numba
        return int(numba.get_num_threads())
    except ImportError:  # pragma: no cover
        return os.cpu_count() or 1


STREAM_VERSION = 3  # bump when the measuring kernel changes: older cached figures are re-measured


def measure_stream_bandwidth(refresh: bool = False, buffer_bytes: int | None = None,
                             repeats: int = 15) -> tuple[float, dict]:
    """Streaming-read bandwidth of this machine in bytes/s, and how it was measured.

    A numba parallel sum over a float32 buffer of at least 32 x LLC (and 1 GiB), all threads,
    the median of `repeats` after a warm-up (the best and the p10/p90 rates are kept in info:
    on a shared VM the best is an outlier, and kernel timings are compared by their medians). The figure is cached with its
    date, CPU model and thread count in cache_dir()/stream_bandwidth.json and re-measured when
    `refresh` is set or the CPU model or thread count changed.
    """
    import numpy as np

    path = cache_dir() / "stream_bandwidth.json"
    model, threads = cpu_model(), _threads()
    if not refresh and path.exists():
        try:
            info = json.loads(path.read_text())
            if (info.get("cpu_model") == model and info.get("threads") == threads and info.get("Bps", 0) > 0
                    and info.get("version") == STREAM_VERSION):
                info["cached"] = True
                info["path"] = str(path)
                return float(info["Bps"]), info
        except (OSError, ValueError):
            pass
    from sparq_sim.kernels.membench import measure_stream

    nbytes = buffer_bytes or max(1 << 30, 32 * llc_bytes())
    a = np.ones(nbytes // 4, np.float32)
    res = measure_stream(a, repeats)["timing"]
    bps = a.nbytes / res.median_s
    info = {"version": STREAM_VERSION, "Bps": bps, "best_Bps": a.nbytes / res.min_s,
            "p10_Bps": a.nbytes / res.p90_s, "p90_Bps": a.nbytes / res.p10_s, "buffer_bytes": int(a.nbytes),
            "repeats": repeats, "statistic": "median of repeats (kernel timings are medians too)",
            "method": "numba parallel float32 sum (streaming read)",
            "cpu_model": model, "threads": threads, "llc_bytes": llc_bytes(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info, indent=2))
    except OSError:
        pass
    info["cached"] = False
    info["path"] = str(path)
    return bps, info


def read_bandwidth() -> tuple[float, str]:
    """This run's stream read bandwidth (re-measured: a VM drifts) and a line saying how it was
    measured, as the local calibration stores it."""
    bw, info = measure_stream_bandwidth(refresh=True)
    return float(bw), (f"measured: sparq_sim.kernels.timing.measure_stream_bandwidth, {info.get('method', '')}, "
                       f"{info.get('statistic', '')}, {info.get('threads', '?')} threads, {info.get('date', '')}")


_ALLOCATOR = "glibc defaults (not changed)"


def steady_allocator() -> str:
    """Keep this process's freed heap memory for reuse (glibc: no mmap, no trimming); returns how.

    With glibc's defaults an eager kernel's large temporaries (torch.gather copies of K) come either
    from a fresh mmap, page-faulted and zero-filled on every call, or from heap memory kept by an
    earlier free, depending on the allocator's history: the same call measured 20 ms or 50 ms here.
    Timings are of the kernel in the allocator's steady state (as under a caching allocator).
    """
    global _ALLOCATOR
    if _ALLOCATOR.startswith("glibc mallopt"):
        return _ALLOCATOR
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(-4, 0) == 1 and libc.mallopt(-1, ctypes.c_int(2 ** 31 - 1)) == 1  # M_MMAP_MAX, M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        ok = False
    _ALLOCATOR = ("glibc mallopt(M_MMAP_MAX=0, M_TRIM_THRESHOLD=2^31-1): freed memory reused, no per-call page faults"
                  if ok else "allocator defaults (glibc mallopt unavailable)")
    return _ALLOCATOR


def environment() -> dict:
    """What a timing depends on: CPU, threads, library versions, date."""
    env = {"cpu_model": cpu_model(), "logical_cpus": os.cpu_count(), "threads": _threads(),
           "llc_bytes": llc_bytes(), "allocator": _ALLOCATOR, "python": platform.python_version(),
           "platform": platform.platform(),
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    for mod in ("torch", "numba", "numpy", "triton"):
        try:
            env[f"{mod}_version"] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - absent or broken optional package
            env[f"{mod}_version"] = None
    try:
        import torch
        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name()
    except Exception:  # noqa: BLE001
        pass
    return env
