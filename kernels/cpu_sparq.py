"""Fast CPU SparQ Attention for one decoding step (numba, multi-threaded, cached compile).

One work item per (batch, KV head); the G query heads of a group share it (GQA rules of docs/method.md).
Per item:
1. i1 = top r of sum_g |q_g| (shared); per-head tau folded into the query: q_hat = q[i1] / tau.
   Step 1 streams the r component rows of K_t (contiguous runs of S) block by block; in the same
   pass, per block, it updates each head's running max M and exp-sum Z of the approximate
   scores (a vectorised exp over the block while it is in L1), so s_hat = exp(x - M) / Z is
   never written. Without K_t it reads the r scattered components of each position-major K row.
2. Selection on the raw approximate scores (G = 1: softmax is monotone in them; G > 1: the
   group's summed s_hat, one more vectorised pass): a threshold from a strided sample, one
   pass collecting the few candidates, an exact pick among them by bucket counts (branch-free,
   cpu_util.kth_largest_binned); positions come out sorted.
   The local window is appended. alpha_g = sum_sel exp(x - M_g) / Z_g (k exps).
3. Step 2 gathers whole K rows (dot products, d_h innermost), a softmax over the k exact
   scores, then whole V rows accumulated the same way, and mixes in the value mean by alpha
   when reallocating. No gathered copy is made.

Each step is a function below (group_queries, scaled_components, approximate_scores;
select_positions, chosen_mass; exact_scores, softmax_in_place, mix_values, write_output), and
sparq_kernel calls them in order per work item with its Settings and Workspace. They are
inlined into it (numba inline="always"), so the compiled kernel is one loop body per work item,
exactly as fast as one written in a piece.

The row gathers are bound by misses in flight per core, not by bandwidth (kernels/MEMBENCH.md),
so step 2 prefetches its rows into L2 16 rows ahead and into L1 4 rows ahead: about 10% faster
at S = 32k than 32 rows into L1 alone, because L2 prefetches do not hold the L1's miss buffers
for the whole DRAM latency (kernels/BENCHMARKS.md).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import get_thread_id, njit, prange

from sparq_sim.kernels.cpu_util import (FASTMATH_NO_INF, add_weighted_row, fexp, prefetch, prefetch_l2, score_row,
                                        select_top, to_f32)

BLOCK1 = 4096      # positions per step-1 block (x block and r row pieces stay in L1/L2)
L1_AHEAD = 4   # step-2 rows prefetched into L1 ahead of use
L2_AHEAD = 16  # and into L2 further ahead: ~10% faster than 32 rows into L1 at S = 32k (kernels/BENCHMARKS.md)


class Settings(NamedTuple):
    """SparQ's settings for one call (a NamedTuple: numba takes it as one argument)."""

    r: int                 # query components read in step 1
    k: int                 # positions gathered in step 2, the local window included
    local_window: int      # last positions always kept
    reallocate: bool       # mix in the value mean by alpha
    use_kt: bool           # step 1 reads the component-major copy K_t (else r scattered elements of K rows)


class Workspace(NamedTuple):
    """Per-thread scratch (one slice per thread), kept between calls so nothing is page-faulted per
    call. A NamedTuple rather than a dataclass: numba takes it as one argument."""

    x: np.ndarray          # (T, G, S) float32: approximate scores
    rank: np.ndarray       # (T, S) float32 (G > 1: the group's summed s_hat; G = 1: unused, (T, 1))
    cand: np.ndarray       # (T, S) int32: candidates of the selection
    cvals: np.ndarray      # (T, S) float32: their values
    i2: np.ndarray         # (T, k) int32: the chosen positions
    sc: np.ndarray         # (T, G, k) float32: exact scores, then softmax weights


@njit(inline="always", cache=True)
def prefetch_row(arr, start, d, line):
    """Software prefetch into L1 of the d elements of `arr` (flat) from `start`, one hint per line."""
    for o in range(0, d, line):
        prefetch(arr, start + o)


@njit(inline="always", cache=True)
def prefetch_row_l2(arr, start, d, line):
    """The same into L2 only."""
    for o in range(0, d, line):
        prefetch_l2(arr, start + o)


@njit(inline="always", cache=True)
def prefetch_first_rows(arr, base, rows, k, d, line):
    """Before a gather pass over rows[:k] of `arr` (flat row index base + rows[j]): its first rows."""
    for j in range(min(L2_AHEAD, k)):
        prefetch_row_l2(arr, (base + rows[j]) * d, d, line)
    for j in range(min(L1_AHEAD, k)):
        prefetch_row(arr, (base + rows[j]) * d, d, line)


@njit(inline="always", cache=True)
def prefetch_rows_ahead(arr, base, rows, j, k, d, line):
    """While using row j of that pass: row j + L2_AHEAD into L2, row j + L1_AHEAD into L1."""
    if j + L2_AHEAD < k:
        prefetch_row_l2(arr, (base + rows[j + L2_AHEAD]) * d, d, line)
    if j + L1_AHEAD < k:
        prefetch_row(arr, (base + rows[j + L1_AHEAD]) * d, d, line)


# ---------------------------------------------------------------- step 1: components and scores
@njit(inline="always", cache=True)
def group_queries(q, b, h, G):
    """The G query rows of KV head h as float32 (G, d), and sum_g |q_g| (d,)."""
    d = q.shape[2]
    qg = np.empty((G, d), np.float32)
    a = np.zeros(d, np.float32)
    for g in range(G):
        for i in range(d):
            v = q[b, h * G + g, i]
            qg[g, i] = v
            a[i] += abs(v)
    return qg, a


@njit(inline="always", cache=True)
def scaled_components(qg, a, r):
    """i1 = top r of `a` (shared by the group) and q_hat (r, G) = q_g[i1] / tau_g, per head's tau."""
    G, d = qg.shape
    i1 = np.argsort(-a)[:r]
    qh = np.empty((r, G), np.float32)
    for g in range(G):
        tot = np.float32(0.0)
        part = np.float32(0.0)
        for i in range(d):
            tot += abs(qg[g, i])
        for j in range(r):
            part += abs(qg[g, i1[j]])
        inv_tau = np.float32(1.0 / math.sqrt(d * part / tot)) if part > 0 else np.float32(0.0)
        for j in range(r):
            qh[j, g] = qg[g, i1[j]] * inv_tau
    return i1, qh


@njit(inline="always", cache=True)
def scores_block_kt(Kt, b, h, i1, qh, xs, s0, n):
    """Approximate scores of positions [s0, s0 + n) from the contiguous component rows of K_t."""
    r, G = qh.shape
    # slices indexed from 0 (no wraparound tests): these loops vectorise
    for g in range(G):
        xb = xs[g, s0:s0 + n]
        row0 = Kt[b, h, i1[0], s0:s0 + n]
        qv = qh[0, g]
        for s in range(n):
            xb[s] = qv * to_f32(row0[s])
    j = 1
    while j + 1 < r:          # two component rows per sweep over the block
        row0 = Kt[b, h, i1[j], s0:s0 + n]
        row1 = Kt[b, h, i1[j + 1], s0:s0 + n]
        for g in range(G):
            xb = xs[g, s0:s0 + n]
            q0 = qh[j, g]
            q1 = qh[j + 1, g]
            for s in range(n):
                xb[s] += q0 * to_f32(row0[s]) + q1 * to_f32(row1[s])
        j += 2
    if j < r:
        row0 = Kt[b, h, i1[j], s0:s0 + n]
        for g in range(G):
            xb = xs[g, s0:s0 + n]
            q0 = qh[j, g]
            for s in range(n):
                xb[s] += q0 * to_f32(row0[s])


@njit(inline="always", cache=True)
def scores_block_rows(K, b, h, i1, qh, xs, s0, n):
    """The same from r scattered elements of each position-major K row (no K_t)."""
    r, G = qh.shape
    for s in range(n):
        for g in range(G):
            dot = np.float32(0.0)
            for j in range(r):
                dot += qh[j, g] * to_f32(K[b, h, s0 + s, i1[j]])
            xs[g, s0 + s] = dot


@njit(inline="always", cache=True)
def update_softmax_stats(xs, s0, n, M, Z):
    """Fold the block's scores into each head's running max M and exp-sum Z (block still in L1)."""
    for g in range(M.shape[0]):
        xb = xs[g, s0:s0 + n]
        bm = xb[0]
        for s in range(n):
            bm = max(bm, xb[s])
        new_m = max(M[g], bm)
        if M[g] > -np.inf and new_m > M[g]:
            Z[g] *= fexp(M[g] - new_m)
        M[g] = new_m
        zs = np.float32(0.0)
        for s in range(n):
            zs += fexp(xb[s] - new_m)
        Z[g] += zs


@njit(inline="always", cache=True)
def approximate_scores(K, Kt, use_kt, b, h, i1, qh, xs):
    """Step 1: xs[g, :S] = q_hat_g . K[:, i1] block by block, with each head's softmax max M and
    sum Z over them in the same pass (so s_hat is never written). Returns (M, Z)."""
    G = qh.shape[1]
    S = K.shape[2]
    M = np.full(G, -np.inf, np.float32)
    Z = np.zeros(G, np.float32)
    for s0 in range(0, S, BLOCK1):
        n = min(BLOCK1, S - s0)
        if use_kt:
            scores_block_kt(Kt, b, h, i1, qh, xs, s0, n)
        else:
            scores_block_rows(K, b, h, i1, qh, xs, s0, n)
        update_softmax_stats(xs, s0, n, M, Z)
    return M, Z


# ---------------------------------------------------------------- top-k selection
@njit(inline="always", cache=True)
def select_positions(xs, M, Z, n_pos, k, l, i2, rank, cand, cvals):
    """i2[:k] = the top k - l positions of [0, n_pos) by the ranking value (sorted), then the local
    window n_pos .. n_pos + l - 1. Ranking: the raw score when G = 1 (softmax is monotone in it),
    else the group's summed s_hat = sum_g exp(x_g - M_g) / Z_g (written into `rank`)."""
    G = M.shape[0]
    kk = k - l
    if G == 1:
        ranking = xs[0]
    else:
        ranking = rank
        ranking[:] = 0.0
        for g in range(G):
            invz = np.float32(1.0) / Z[g]
            mg = M[g]
            xg = xs[g]
            for s in range(n_pos):
                ranking[s] += fexp(xg[s] - mg) * invz
    select_top(ranking, n_pos, kk, i2, cand, cvals)
    for t in range(l):
        i2[kk + t] = n_pos + t


@njit(inline="always", cache=True)
def chosen_mass(xs, M, Z, i2, k):
    """alpha_g = sum over the chosen positions of s_hat_g (at most 1): the reallocation weight."""
    G = M.shape[0]
    alpha = np.empty(G, np.float32)
    for g in range(G):
        sa = np.float32(0.0)
        for j in range(k):
            sa += fexp(xs[g, i2[j]] - M[g])
        alpha[g] = min(np.float32(1.0), sa / Z[g])
    return alpha


# ---------------------------------------------------------------- step 2: gather, softmax, mix
@njit(inline="always", cache=True)
def exact_scores(qg, K, b, h, i2, k, sc):
    """sc[g, j] = q_g . K[i2[j]] / sqrt(d) on whole K rows gathered in place (prefetched ahead)."""
    Hkv, S, d = K.shape[1], K.shape[2], K.shape[3]
    scale = np.float32(1.0 / math.sqrt(d))
    line = max(1, 64 // K.itemsize)
    base = (b * Hkv + h) * S
    prefetch_first_rows(K, base, i2, k, d, line)
    for j in range(k):
        prefetch_rows_ahead(K, base, i2, j, k, d, line)
        score_row(qg, K[b, h, i2[j]], sc, j, scale)


@njit(inline="always", cache=True)
def softmax_in_place(sc, k):
    """sc[g, :k] = exp(sc[g, :k] - max); returns each head's sum (the normaliser)."""
    G = sc.shape[0]
    lsum = np.empty(G, np.float32)
    for g in range(G):
        srow = sc[g]
        mx = srow[0]
        for j in range(k):
            mx = max(mx, srow[j])
        t = np.float32(0.0)
        for j in range(k):
            p = fexp(srow[j] - mx)
            srow[j] = p
            t += p
        lsum[g] = t
    return lsum


@njit(inline="always", cache=True)
def mix_values(V, b, h, i2, k, sc):
    """acc[g] = sum_j sc[g, j] V[i2[j]] on whole V rows gathered in place (prefetched ahead)."""
    Hkv, S, d = V.shape[1], V.shape[2], V.shape[3]
    G = sc.shape[0]
    line = max(1, 64 // V.itemsize)
    base = (b * Hkv + h) * S
    acc = np.zeros((G, d), np.float32)
    prefetch_first_rows(V, base, i2, k, d, line)
    for j in range(k):
        prefetch_rows_ahead(V, base, i2, j, k, d, line)
        add_weighted_row(acc, sc, j, V[b, h, i2[j]])
    return acc


@njit(inline="always", cache=True)
def write_output(out, b, h, acc, lsum, alpha, vbar, reallocate):
    """out = acc / lsum, with reallocation: alpha of that and (1 - alpha) of the value mean vbar."""
    G, d = acc.shape
    for g in range(G):
        inv = np.float32(1.0) / lsum[g]
        if reallocate:
            al = alpha[g]
            for i in range(d):
                out[b, h * G + g, i] = al * acc[g, i] * inv + (np.float32(1.0) - al) * vbar[b, h, i]
        else:
            for i in range(d):
                out[b, h * G + g, i] = acc[g, i] * inv


# ---------------------------------------------------------------- the kernel
@njit(parallel=True, fastmath=FASTMATH_NO_INF, cache=True)
def sparq_kernel(q, K, V, Kt, vbar, out, p, ws):
    """SparQ attention of one decoding step: q (B, Hq, d) float32, K, V (B, Hkv, S, d), Kt (B, Hkv,
    d, S) when p.use_kt, vbar (B, Hkv, d) float32 when p.reallocate; writes out (B, Hq, d).
    p: Settings; ws: Workspace (its slices indexed by thread)."""
    B, Hq = q.shape[0], q.shape[1]
    Hkv, S = K.shape[1], K.shape[2]
    G = Hq // Hkv
    n_pos = S - p.local_window
    for w in prange(B * Hkv):
        tid = get_thread_id()
        b = w // Hkv
        h = w % Hkv
        xs, i2, sc = ws.x[tid], ws.i2[tid], ws.sc[tid]
        qg, a = group_queries(q, b, h, G)
        i1, qh = scaled_components(qg, a, p.r)
        M, Z = approximate_scores(K, Kt, p.use_kt, b, h, i1, qh, xs)
        select_positions(xs, M, Z, n_pos, p.k, p.local_window, i2, ws.rank[tid], ws.cand[tid], ws.cvals[tid])
        alpha = chosen_mass(xs, M, Z, i2, p.k)
        exact_scores(qg, K, b, h, i2, p.k, sc)
        lsum = softmax_in_place(sc, p.k)
        acc = mix_values(V, b, h, i2, p.k, sc)
        write_output(out, b, h, acc, lsum, alpha, vbar, p.reallocate)


_WORKSPACE: dict = {}


def workspace(threads: int, G: int, S: int, k: int) -> Workspace:
    """Per-thread scratch for sparq_kernel, kept between calls (the latest shape only)."""
    key = (threads, G, S, k)
    ws = _WORKSPACE.get(key)
    if ws is None:
        _WORKSPACE.clear()
        ws = Workspace(x=np.zeros((threads, G, S), np.float32),
                       rank=np.zeros((threads, S if G > 1 else 1), np.float32),
                       cand=np.zeros((threads, S), np.int32), cvals=np.zeros((threads, S), np.float32),
                       i2=np.zeros((threads, k), np.int32), sc=np.zeros((threads, G, k), np.float32))
        _WORKSPACE[key] = ws
    return ws
