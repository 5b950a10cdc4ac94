"""Memory microbenchmarks of this machine, and the DRAM simulator's prediction beside them.

Kernels (numba, multi-threaded over all cores):

* stream read : sum of a buffer much larger than the last-level cache, front to back;
* row gather  : rows of 64 B .. 8 KiB at random row-aligned positions of the same buffer
  (positions from a per-thread LCG inside the kernel, so no index array is read);
* pointer chase: one thread follows a random cyclic permutation of cache lines (idle latency).

The buffer is an anonymous mapping advised MADV_HUGEPAGE (transparent huge pages), so the row
gathers measure the DRAM path rather than page walks. Each figure: one warm-up, then repeats;
the median is reported with the spread (min..max).

``python -m sparq_sim.kernels.membench`` measures, builds the local hardware profile (fitting
its in-flight limits, see sparq_sim/simulator/local.py), and prints measured against simulated
bandwidth per row size. ``--write-md`` also writes kernels/MEMBENCH.md. ``measure_stream`` is the
project's one stream-read measurement (kernels/timing.py caches its figure).
"""

from __future__ import annotations

import argparse
import mmap
import os
import sys
import time

import numpy as np
from numba import get_num_threads, njit, prange

from sparq_sim.kernels.timing import TimingResult, summarize, time_call
from sparq_sim.machine import cpu_model, huge_page_bytes, huge_page_mapping

LINE = 64
ROW_SIZES = (64, 128, 256, 512, 1024, 2048, 4096, 8192)
DEFAULT_BUFFER = 1 << 30


def alloc_buffer(nbytes: int) -> tuple[np.ndarray, mmap.mmap]:
    """A float64 array on an anonymous mapping advised to use huge pages, touched once."""
    m = huge_page_mapping(nbytes)
    arr = np.frombuffer(m, dtype=np.float64)
    arr[:] = 1.0
    return arr, m


def huge_pages_kb() -> int:
    """AnonHugePages of this process (kB), to report whether huge pages took effect; -1 unknown."""
    b = huge_page_bytes()
    return b // 1024 if b >= 0 else -1


@njit(parallel=True, fastmath=True, cache=True)
def stream_sum(a, n_chunks):
    """Sum of a 1-D array read front to back, `n_chunks` contiguous chunks over the threads: the
    stream read every bandwidth figure of sparq-sim measures."""
    chunk = a.shape[0] // n_chunks
    part = np.zeros(n_chunks, a.dtype)
    for c in prange(n_chunks):
        x = a[c * chunk:(c + 1) * chunk]   # a slice indexed from 0 vectorises (no wraparound test)
        s = a[0] - a[0]                    # zero of the array's dtype
        for i in range(x.shape[0]):
            s += x[i]
        part[c] = s
    return part.sum()


def stream_chunks() -> int:
    return 64 * get_num_threads()


@njit(parallel=True, fastmath=True, cache=True)
def _gather_sum(a, row_elems, mask, n_gathers, seed):
    """Sum `n_gathers` rows of `row_elems` float64 at random row indices (0..mask), per thread an
    LCG (Knuth's MMIX constants, high bits): a cheap counter-free generator, no index array."""
    n_threads = 64
    per = (n_gathers + n_threads - 1) // n_threads
    partial = np.zeros(n_threads)
    for t in prange(n_threads):
        s = 0.0
        x = np.uint64(seed + t * 7919)
        for g in range(t * per, min(n_gathers, t * per + per)):
            x = x * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
            pos = np.int64((x >> np.uint64(20)) & np.uint64(mask)) * row_elems
            for j in range(row_elems):
                s += a[pos + j]
        partial[t] = s
    return partial.sum()


@njit(cache=True)
def _chase(idx, start, steps):
    p = start
    for _ in range(steps):
        p = idx[p]
    return p


def _timed(fn, *args, repeats: int = 7) -> TimingResult:
    """One warm-up (and compilation), then `repeats` timed calls (the kernels' harness)."""
    return time_call(fn, lambda: args, warmup=1, repeats=repeats)


def _summary(nbytes: float, res: TimingResult) -> dict:
    return {"bytes": nbytes, "median_Bps": nbytes / res.median_s, "min_Bps": nbytes / res.max_s,
            "max_Bps": nbytes / res.min_s, "repeats": res.n}


def measure_stream(a: np.ndarray, repeats: int = 7) -> dict:
    """Stream read bandwidth over `a` (one warm-up, then `repeats`): median, min and max rate,
    and the timing. The one stream measurement: kernels.timing.measure_stream_bandwidth caches
    its figure, which the local calibration uses."""
    res = _timed(stream_sum, a, stream_chunks(), repeats=repeats)
    return {**_summary(a.nbytes, res), "timing": res}


def _scores(q, K):
    return q @ K.transpose(-1, -2)


def measure_framework_matmul(K, q, repeats: int = 7) -> dict:
    """Read rate of PyTorch's batched matrix-vector product over K (heads, positions, d): the
    score product q @ K^T of the eager attention kernels (attn-torch), one warm-up then `repeats`;
    the rate the framework's math library draws from memory on this machine, beside the stream."""
    res = _timed(_scores, q, K, repeats=repeats)
    return {**_summary(K.numel() * K.element_size(), res), "timing": res}


def measure_gather(a: np.ndarray, row_bytes: int, total_bytes: int = 1 << 28, repeats: int = 7,
                   seed: int = 12345) -> dict:
    row_elems = row_bytes // 8
    n_rows = 1 << int(np.log2(a.size // row_elems))   # a power of two: positions are masked
    n_gathers = max(1, total_bytes // row_bytes)
    out = _summary(n_gathers * row_bytes, _timed(_gather_sum, a, row_elems, n_rows - 1, n_gathers, seed,
                                                  repeats=repeats))
    out["row_bytes"] = row_bytes
    return out


def measure_latency(a: np.ndarray, steps: int = 2_000_000, repeats: int = 5, seed: int = 7) -> dict:
    """Idle load-to-use latency: chase a random cycle through every line of the buffer."""
    idx = a.view(np.int64)
    n_lines = a.nbytes // LINE
    stride = LINE // 8
    perm = np.random.default_rng(seed).permutation(n_lines).astype(np.int64) * stride
    idx[perm] = np.roll(perm, -1)
    del perm
    res = _timed(_chase, idx, 0, steps, repeats=repeats)
    a[:] = 1.0
    return {"median_s": res.median_s / steps, "min_s": res.min_s / steps, "max_s": res.max_s / steps,
            "steps": steps, "repeats": repeats}


FRAMEWORK_HEADS, FRAMEWORK_D = 8, 128   # the eager kernels' heads and head dimension


FRAMEWORK_WHAT = f"PyTorch float32 q @ K^T, {FRAMEWORK_HEADS} heads x {FRAMEWORK_D} components"


def framework_operands(a: np.ndarray):
    """(K, q) of the framework matmul over a stream buffer: its whole rows of FRAMEWORK_HEADS x
    FRAMEWORK_D float32 keys viewed in place (no copy), and a query per head."""
    import torch
    flat = a.view(np.float32)
    row = FRAMEWORK_HEADS * FRAMEWORK_D
    K = torch.from_numpy(flat[: flat.size // row * row]).view(FRAMEWORK_HEADS, -1, FRAMEWORK_D)
    return K, torch.ones(FRAMEWORK_HEADS, 1, FRAMEWORK_D)


def _framework_matmul_over(a: np.ndarray, repeats: int) -> dict | None:
    """PyTorch's q @ K^T read rate over the buffer (None without torch)."""
    try:
        K, q = framework_operands(a)
    except ImportError:
        return None
    out = measure_framework_matmul(K, q, repeats)
    out.pop("timing", None)
    return {**out, "what": FRAMEWORK_WHAT}


def run_all(buffer_bytes: int = DEFAULT_BUFFER, repeats: int = 9, sizes=ROW_SIZES,
            gather_bytes: int = 1 << 27, log=None) -> dict:
    """Every measurement, as a dict (the input of sparq_sim.simulator.local.build_profile).

    The stream and every row size are measured once per round, `repeats` rounds, and the median
    over rounds is kept: slow drifts of a shared machine then hit every size alike.
    """
    say = log or (lambda *_: None)
    a, m = alloc_buffer(buffer_bytes)
    result = {"cpu": cpu_model(), "threads": get_num_threads(), "buffer_bytes": buffer_bytes,
              "huge_pages_kB": huge_pages_kb(), "date": time.strftime("%Y-%m-%d"),
              "repeats": repeats}
    say(f"buffer {buffer_bytes >> 20} MiB, huge pages {result['huge_pages_kB'] >> 10} MiB, "
        f"{result['threads']} threads, {result['cpu']}")
    result["latency"] = measure_latency(a)
    say(f"idle latency {result['latency']['median_s'] * 1e9:.1f} ns")
    jobs = [("stream", stream_sum, (a, stream_chunks()), a.nbytes)]
    for size in sizes:
        row_elems = size // 8
        n_rows = 1 << int(np.log2(a.size // row_elems))
        n = max(1, gather_bytes // size)
        jobs.append((size, _gather_sum, (a, row_elems, n_rows - 1, n, 12345), n * size))
    times = {key: [] for key, *_ in jobs}
    for key, fn, args, _ in jobs:
        fn(*args)  # compile and warm up
    for _ in range(repeats):
        for key, fn, args, _ in jobs:
            t0 = time.perf_counter()
            fn(*args)
            times[key].append(time.perf_counter() - t0)
    result["stream"] = _summary(a.nbytes, summarize(times["stream"]))
    say(f"stream {result['stream']['median_Bps'] / 1e9:.2f} GB/s")
    matmul = _framework_matmul_over(a, repeats)
    if matmul is not None:
        result["framework_matmul"] = matmul
        say(f"framework matmul (PyTorch q @ K^T) {matmul['median_Bps'] / 1e9:.2f} GB/s")
    result["gather"] = []
    for key, _, _, nbytes in jobs[1:]:
        g = _summary(nbytes, summarize(times[key]))
        g["row_bytes"] = key
        result["gather"].append(g)
        say(f"gather {key:5d} B rows {g['median_Bps'] / 1e9:.2f} GB/s "
            f"({g['min_Bps'] / 1e9:.2f}..{g['max_Bps'] / 1e9:.2f})")
    del a, jobs, m   # the mapping is unmapped when the last view goes
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparq_sim.kernels.membench", description=__doc__.split("\n")[0])
    parser.add_argument("--buffer-mib", type=int, default=DEFAULT_BUFFER >> 20)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", help="where to write the local profile (default: the user cache)")
    parser.add_argument("--write-md", action="store_true", help="write kernels/MEMBENCH.md")
    args = parser.parse_args(argv)
    from sparq_sim.simulator import local

    meas = run_all(args.buffer_mib << 20, args.repeats, log=lambda s: print(s, file=sys.stderr))
    profile = local.build_profile(meas)
    path = local.write_profile(profile, args.out)
    table = local.comparison_table(profile)
    print(table)
    print(f"\nlocal profile written to {path}")
    if args.write_md:
        cmd = "flock /tmp/sparq-bench.lock /work/venv/bin/python -m sparq_sim.kernels.membench --write-md"
        md = local.membench_markdown(profile, cmd)
        target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "MEMBENCH.md")
        with open(target, "w") as f:
            f.write(md)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
