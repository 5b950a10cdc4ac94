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

The row gathers are bound by misses in flight per core, not by bandwidth (kernels/MEMBENCH.md),
so step 2 prefetches its rows into L2 16 rows ahead and into L1 4 rows ahead: about 10% faster
at S = 32k than 32 rows into L1 alone, because L2 prefetches do not hold the L1's miss buffers
for the whole DRAM latency (kernels/BENCHMARKS.md).
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_thread_id, njit, prange

from sparq_sim.kernels.cpu_util import FASTMATH_NO_INF, fexp, prefetch, prefetch_l2, select_top, to_f32

BLOCK1 = 4096      # positions per step-1 block (x block and r row pieces stay in L1/L2)
L1_AHEAD = 4   # step-2 rows prefetched into L1 ahead of use
L2_AHEAD = 16  # and into L2 further ahead: ~10% faster than 32 rows into L1 at S = 32k (kernels/BENCHMARKS.md)


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


@njit(parallel=True, fastmath=FASTMATH_NO_INF, cache=True)
def sparq_kernel(q, K, V, Kt, use_kt, vbar, r, k, l, reallocate, out, ws_x, ws_rank, ws_cand, ws_cvals, ws_i2, ws_sc):
    """Workspaces (one slice per thread, reused between calls so nothing is page-faulted
    per call): ws_x (T, G, S), ws_rank (T, S), ws_cand (T, S) int32, ws_cvals (T, S),
    ws_i2 (T, k) int32, ws_sc (T, G, k)."""
    B, Hq, d = q.shape
    Hkv, S = K.shape[1], K.shape[2]
    G = Hq // Hkv
    scale = np.float32(1.0 / math.sqrt(d))
    n_pos = S - l
    kk = k - l
    line_k = max(1, 64 // K.itemsize)
    line_v = max(1, 64 // V.itemsize)
    for w in prange(B * Hkv):
        tid = get_thread_id()
        b = w // Hkv
        h = w % Hkv
        # ---- step 1: components and temperatures
        qg = np.empty((G, d), np.float32)
        a = np.zeros(d, np.float32)
        for g in range(G):
            for i in range(d):
                v = q[b, h * G + g, i]
                qg[g, i] = v
                a[i] += abs(v)
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
        # ---- step 1: approximate scores with fused running max / exp-sum
        xs = ws_x[tid]
        M = np.full(G, -np.inf, np.float32)
        Z = np.zeros(G, np.float32)
        for s0 in range(0, S, BLOCK1):
            n = min(BLOCK1, S - s0)
            if use_kt:
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
            else:
                for s in range(n):
                    for g in range(G):
                        dot = np.float32(0.0)
                        for j in range(r):
                            dot += qh[j, g] * to_f32(K[b, h, s0 + s, i1[j]])
                        xs[g, s0 + s] = dot
            for g in range(G):
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
        # ---- step 2: selection
        i2 = ws_i2[tid]
        cand = ws_cand[tid]
        cvals = ws_cvals[tid]
        if G == 1:
            rank = xs[0]
        else:
            rank = ws_rank[tid]
            rank[:] = 0.0
            for g in range(G):
                invz = np.float32(1.0) / Z[g]
                mg = M[g]
                xg = xs[g]
                for s in range(n_pos):
                    rank[s] += fexp(xg[s] - mg) * invz
        select_top(rank, n_pos, kk, i2, cand, cvals)
        for t in range(l):
            i2[kk + t] = n_pos + t
        alpha = np.empty(G, np.float32)
        for g in range(G):
            sa = np.float32(0.0)
            for j in range(k):
                sa += fexp(xs[g, i2[j]] - M[g])
            alpha[g] = min(np.float32(1.0), sa / Z[g])
        # ---- step 2: exact scores on gathered K rows
        sc = ws_sc[tid]
        base = (b * Hkv + h) * S
        prefetch_first_rows(K, base, i2, k, d, line_k)
        for j in range(k):
            prefetch_rows_ahead(K, base, i2, j, k, d, line_k)
            krow = K[b, h, i2[j]]
            for g in range(G):
                qrow = qg[g]
                dot = np.float32(0.0)
                for i in range(d):
                    dot += qrow[i] * to_f32(krow[i])
                sc[g, j] = dot * scale
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
        # ---- step 2: weighted sum of gathered V rows
        acc = np.zeros((G, d), np.float32)
        prefetch_first_rows(V, base, i2, k, d, line_v)
        for j in range(k):
            prefetch_rows_ahead(V, base, i2, j, k, d, line_v)
            vrow = V[b, h, i2[j]]
            for g in range(G):
                p = sc[g, j]
                arow = acc[g]
                for i in range(d):
                    arow[i] += p * to_f32(vrow[i])
        # ---- step 3: reallocation
        for g in range(G):
            inv = np.float32(1.0) / lsum[g]
            if reallocate:
                al = alpha[g]
                for i in range(d):
                    out[b, h * G + g, i] = al * acc[g, i] * inv + (np.float32(1.0) - al) * vbar[b, h, i]
            else:
                for i in range(d):
                    out[b, h * G + g, i] = acc[g, i] * inv


_WORKSPACE: dict = {}


def workspace(threads: int, G: int, S: int, k: int):
    """Per-thread scratch for sparq_kernel, kept between calls (the latest shape only)."""
    key = (threads, G, S, k)
    ws = _WORKSPACE.get(key)
    if ws is None:
        _WORKSPACE.clear()
        ws = (np.zeros((threads, G, S), np.float32), np.zeros((threads, S if G > 1 else 1), np.float32),
              np.zeros((threads, S), np.int32), np.zeros((threads, S), np.float32),
              np.zeros((threads, k), np.int32), np.zeros((threads, G, k), np.float32))
        _WORKSPACE[key] = ws
    return ws
