"""numba building blocks shared by the CPU kernels: loads of 16-bit storage, a vectorisable exp,
software prefetch, the row steps of attention (a K row's scores, a V row's weighted sum), and
the fused top-k selection (sample threshold, then exact pick).

16-bit storage is passed to numba as integer views, so the storage format is a compile-time
type: uint16 = IEEE float16 bits, int16 = bfloat16 bits, float32 as itself. ``to_f32`` loads
any of them as float32 (float16 becomes one vcvtph2ps with F16C, bfloat16 a shift).

numba caches each kernel under its own file's stamp, and a cached kernel embeds the functions
of this module it calls: after editing this file, touch cpu_sparq.py and cpu_dense.py, or the
old code keeps running from the cache (a fresh install recompiles everything).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

FASTMATH = {"nnan", "ninf", "nsz", "arcp", "contract", "afn", "reassoc"}
FASTMATH_NO_INF = {"nsz", "arcp", "contract", "afn", "reassoc"}  # -inf appears as "no value yet"


# ---------------------------------------------------------------- bit-level intrinsics
def _bits_intrinsic(source, convert, doc: str):
    """A numba intrinsic float32 <- `source` integer whose code is `convert(builder, value)`."""
    @intrinsic
    def bits_to_f32(typingctx, x):
        if x != source:
            return None

        def codegen(context, builder, sig, args):
            return convert(builder, args[0])
        return types.float32(source), codegen
    bits_to_f32.__doc__ = doc
    return bits_to_f32


_half_bits_to_f32 = _bits_intrinsic(
    types.uint16, lambda b, x: b.fpext(b.bitcast(x, ir.HalfType()), ir.FloatType()),
    "A float16's bits (uint16) as float32.")
_bf16_bits_to_f32 = _bits_intrinsic(
    types.int16, lambda b, x: b.bitcast(b.shl(b.zext(x, ir.IntType(32)), ir.Constant(ir.IntType(32), 16)),
                                        ir.FloatType()),
    "A bfloat16's bits (int16) as float32: the top half of a float32.")
i32_bits_to_f32 = _bits_intrinsic(types.int32, lambda b, x: b.bitcast(x, ir.FloatType()),
                                  "Reinterpret an int32's bits as a float32.")


def to_f32(x):  # pragma: no cover - replaced by the overload inside numba
    raise NotImplementedError


@overload(to_f32, inline="always")
def _to_f32_overload(x):
    if x == types.float32:
        return lambda x: x
    if x == types.uint16:
        return lambda x: _half_bits_to_f32(x)
    if x == types.int16:
        return lambda x: _bf16_bits_to_f32(x)
    if isinstance(x, types.Float):
        return lambda x: np.float32(x)
    return None


def _prefetch_intrinsic(locality: int, doc: str):
    """A numba intrinsic prefetch(arr, idx) of arr.flat[idx] with this llvm.prefetch locality."""
    @intrinsic
    def prefetch_at(typingctx, arr, idx):
        if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
            return None

        def codegen(context, builder, sig, args):
            aryty = sig.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = builder.gep(ary.data, [args[1]])
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, locality),
                              ir.Constant(i32, 1)])
            return context.get_dummy_value()
        return types.void(arr, idx), codegen
    prefetch_at.__doc__ = doc
    return prefetch_at


# llvm.prefetch locality 3 is prefetcht0 (into L1 and below), 1 is prefetcht2 (into L2 on Zen 3).
prefetch = _prefetch_intrinsic(3, "Software prefetch of arr.flat[idx] into L1 (a hint, never faults).")
prefetch_l2 = _prefetch_intrinsic(1, "Software prefetch of arr.flat[idx] into L2 only (a hint, never faults).")


# ---------------------------------------------------------------- exp
_LOG2E = np.float32(1.4426950408889634)


@njit(inline="always", fastmath=True)
def fexp(x):
    """exp(x) for float32 x <= 88, vectorisable (Cephes exp2f polynomial, ~2 ulp); 0 below -87."""
    t = max(x * _LOG2E, np.float32(-127.0))
    n = np.floor(t + np.float32(0.5))
    f = t - n                                   # in [-0.5, 0.5]
    p = np.float32(1.535336188319500e-4)
    p = p * f + np.float32(1.339887440266574e-3)
    p = p * f + np.float32(9.618437357674640e-3)
    p = p * f + np.float32(5.550332471162809e-2)
    p = p * f + np.float32(2.402264791363012e-1)
    p = p * f + np.float32(6.931472028550421e-1)
    p = p * f + np.float32(1.0)
    e = i32_bits_to_f32(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))
    return p * e


# ---------------------------------------------------------------- row steps shared by the kernels
@njit(inline="always")
def score_row(qg, krow, sc, j, scale):
    """sc[g, j] = scale * qg[g] . krow for each query head g of a group (d_h innermost, contiguous)."""
    for g in range(qg.shape[0]):
        qrow = qg[g]
        dot = np.float32(0.0)
        for i in range(qrow.shape[0]):
            dot += qrow[i] * to_f32(krow[i])
        sc[g, j] = dot * scale


@njit(inline="always")
def add_weighted_row(acc, sc, j, vrow):
    """acc[g] += sc[g, j] * vrow for each query head g of a group."""
    for g in range(acc.shape[0]):
        p = sc[g, j]
        arow = acc[g]
        for i in range(arow.shape[0]):
            arow[i] += p * to_f32(vrow[i])


# ---------------------------------------------------------------- selection
SAMPLE = 1024          # sample size for the threshold
EXACT_BELOW = 4096     # positions at which the sample is not worth it


@njit(cache=True)
def kth_largest(vals, n, kk):
    """The kk-th largest of vals[:n] (1 <= kk <= n), by an in-place quickselect (introselect-like)."""
    lo, hi = 0, n - 1
    target = kk - 1                       # index in descending order
    while True:
        if lo == hi:
            return vals[lo]
        # median of three pivot
        mid = (lo + hi) >> 1
        a, b, c = vals[lo], vals[mid], vals[hi]
        if a < b:
            a, b = b, a
        if b < c:
            b, c = c, b
            if a < b:
                a, b = b, a
        pivot = b
        i, j = lo, hi
        while i <= j:                     # Hoare partition, descending
            while vals[i] > pivot:
                i += 1
            while vals[j] < pivot:
                j -= 1
            if i <= j:
                vals[i], vals[j] = vals[j], vals[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            return vals[target]


BINS = 2048            # buckets of kth_largest_binned
BINNED_ABOVE = 512     # from this many values on, bucketing beats quickselect


@njit(cache=True)   # no fastmath: both passes must bucket every value the same way
def kth_largest_binned(vals, n, kk):
    """The kk-th largest of vals[:n] (1 <= kk <= n), exactly, in a few branch-free passes.

    Why: on fresh scores a quickselect mispredicts about every other comparison (~55 us for ~3900
    candidates here, against ~9 us this way). Values are bucketed linearly between their min and
    max (a monotone map: bucket order is value order); counting buckets from the top finds the
    one holding the kk-th largest, whose few members are moved to the front of vals (vals is
    overwritten) for a quickselect among them.
    """
    mn = vals[0]
    mx = vals[0]
    for c in range(n):
        mn = min(mn, vals[c])
        mx = max(mx, vals[c])
    if mx == mn:
        return mx
    scale = np.float32(BINS - 1) / (mx - mn)
    hist = np.zeros(BINS, np.int32)
    for c in range(n):
        hist[np.uint32((vals[c] - mn) * scale)] += 1      # unsigned index: no wraparound test
    above = 0
    b = np.uint32(BINS - 1)
    while above + hist[b] < kk:
        above += hist[b]
        b -= 1
    m = 0
    for c in range(n):
        v = vals[c]
        vals[m] = v
        m += np.uint32((v - mn) * scale) == b
    return kth_largest(vals, m, kk - above)


@njit(inline="always")
def kth_of(vals, n, kk):
    """kth_largest_binned for many values, quickselect for few."""
    return kth_largest_binned(vals, n, kk) if n >= BINNED_ABOVE else kth_largest(vals, n, kk)


@njit(cache=True, fastmath=FASTMATH_NO_INF)
def select_top(score, n, kk, out, cand, cvals):
    """Write the positions of the kk largest of score[:n] into out[:kk] in ascending order.

    One pass over the scores with a threshold from a strided sample (a little below the
    expected kk-th largest), collecting the few candidates; then an exact pick among them
    (kth_largest_binned on a copy of the candidate values, ties resolved by position). Falls back to
    all positions when the sample misjudges. cand (int32) and cvals (float32) need n entries.
    Returns kk.
    """
    if kk <= 0:
        return 0
    thresh = -np.inf
    if n >= EXACT_BELOW and kk * 8 <= n:
        stride = n // SAMPLE
        for t in range(SAMPLE):
            cvals[t] = score[t * stride + (stride >> 1)]
        # expected kk*1.3 + 3 sigma candidates, so a shortfall is rare
        want = kk * SAMPLE / n
        rank = int(want * 1.3 + 3.0 * math.sqrt(want) + 4.0)
        if rank < SAMPLE:
            thresh = kth_of(cvals, SAMPLE, rank)
    nc = 0
    if thresh > -np.inf:
        x = score[:n]
        for i in range(n):               # branchless compaction: always write, advance on a hit
            cand[nc] = i
            nc += x[i] >= thresh
    if nc < kk:                          # sample misjudged (or no sample): every position is a candidate
        for i in range(n):
            cand[i] = i
        nc = n
    for c in range(nc):
        cvals[c] = score[cand[c]]
    kth = kth_of(cvals, nc, kk)
    n_gt = 0
    for c in range(nc):
        n_gt += score[cand[c]] > kth
    n_eq = kk - n_gt                     # ties at kth: the first n_eq of them by position
    m = 0
    for c in range(nc):                  # branchless, compacting cand in place (m <= c)
        i = cand[c]
        v = score[i]
        eq = (v == kth) & (n_eq > 0)
        cand[m] = i
        m += (v > kth) | eq
        n_eq -= eq
    for j in range(kk):
        out[j] = cand[j]
    return kk
