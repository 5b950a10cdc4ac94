"""Fast CPU SparQ Attention for one decoding step (numba, multi-threaded, cached compile).

One work item per (batch, KV head); the G query heads of a group share it (GQA rules of SPARQ.md).
Per item:
1. i1 = top r of sum_g |q_g| (shared); per-head tau folded into the query: q_hat = q[i1] / tau.
   Step 1 streams the r component rows of K_t (contiguous runs of S) block by block; in the same
   pass, per block, it updates each head's running max M and exp-sum Z of the approximate
   scores (a vectorised exp over the block while it is in L1), so s_hat = exp(x - M) / Z is
   never written. Without K_t it reads the r scattered components of each position-major K row.
2. Selection on the raw approximate scores (G = 1: softmax is monotone in them; G > 1: the
   group's summed s_hat, one more vectorised pass): a threshold from a strided sample, one
   pass collecting the few candidates, an exact pick among them; positions come out sorted.
   The local window is appended. alpha_g = sum_sel exp(x - M_g) / Z_g (k exps).
3. Step 2 gathers whole K rows (dot products, d_h innermost), a softmax over the k exact
   scores, then whole V rows accumulated the same way, and mixes in the value mean by alpha
   when reallocating. No gathered copy is made.

Why it is laid out this way (measured, kernels/BENCHMARKS.md): the row gathers are bound by
misses in flight per core, not by bandwidth, and leave the core idle meanwhile. So rows are
prefetched into L2 16 rows ahead and into L1 4 rows ahead (about 14% faster at S = 32k than
32 rows into L1 alone), and each thread runs an item's step 2 one turn late, after the next
item's step 1, with that item's candidate pass (the selection's O(S) part) spread over the
gathers, a few positions per gathered row.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_thread_id, njit, prange

from sparq_sim.kernels.cpu_util import (FASTMATH_NO_INF, collect_candidates, fexp, prefetch, prefetch_l2, select_finish,
                                         select_threshold, to_f32)

BLOCK1 = 4096      # positions per step-1 block (x block and r row pieces stay in L1/L2)
L1_AHEAD = 4   # step-2 rows prefetched into L1 ahead of use
L2_AHEAD = 16  # and into L2 further ahead: ~14% faster than 32 rows into L1 at S = 32k (kernels/BENCHMARKS.md)


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
def sparq_kernel(q, K, V, Kt, use_kt, vbar, r, k, l, reallocate, out, ws_x, ws_rank, ws_cand, ws_cvals, ws_i2, ws_sc, threads):
    """Workspaces (one slice per thread, reused between calls so nothing is page-faulted
    per call): ws_x (T, G, S), ws_rank (T, S), ws_cand (T, S) int32, ws_cvals (T, S),
    ws_i2 (T, k) int32, ws_sc (T, G, k). `threads` is numba.get_num_threads(), passed in (calling
    it here would keep the compiled kernel out of the cache). Each thread takes a contiguous run
    of items and runs an item's gathers one turn late, after the next item's step 1."""
    B, Hq, d = q.shape
    Hkv, S = K.shape[1], K.shape[2]
    G = Hq // Hkv
    scale = np.float32(1.0 / math.sqrt(d))
    n_pos = S - l
    kk = k - l
    line_k = max(1, 64 // K.itemsize)
    line_v = max(1, 64 // V.itemsize)
    items = B * Hkv
    T = max(1, min(threads, ws_x.shape[0], items))
    per_row = (n_pos + 2 * k - 1) // (2 * k)
    for t in prange(T):
        tid = get_thread_id()
        lo = items * t // T
        hi = items * (t + 1) // T
        xs = ws_x[tid]
        i2 = ws_i2[tid]
        cand = ws_cand[tid]
        cvals = ws_cvals[tid]
        sc = ws_sc[tid]
        qg = np.empty((G, d), np.float32)       # current item's query rows
        pq = np.empty((G, d), np.float32)       # previous item's (its gathers run one item late)
        palpha = np.empty(G, np.float32)
        a = np.empty(d, np.float32)
        qh = np.empty((r, G), np.float32)
        M = np.empty(G, np.float32)
        Z = np.empty(G, np.float32)
        lsum = np.empty(G, np.float32)
        acc = np.empty((G, d), np.float32)
        pb = 0
        ph = 0
        for w in range(lo, hi + 1):
            cur = w < hi
            b = w // Hkv
            h = w % Hkv
            thresh = -np.inf
            nc = 0
            pos = n_pos
            if G == 1:
                rank = xs[0]
            else:
                rank = ws_rank[tid]
            if cur:
                # ---- step 1 of the current item
                a[:] = 0.0
                for g in range(G):
                    for i in range(d):
                        v = q[b, h * G + g, i]
                        qg[g, i] = v
                        a[i] += abs(v)
                i1 = np.argsort(-a)[:r]
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
                M[:] = -np.inf
                Z[:] = 0.0
                for s0 in range(0, S, BLOCK1):
                    n = min(BLOCK1, S - s0)
                    if use_kt:
                        for g in range(G):
                            xb = xs[g, s0:s0 + n]
                            row0 = Kt[b, h, i1[0], s0:s0 + n]
                            qv = qh[0, g]
                            for s in range(n):
                                xb[s] = qv * to_f32(row0[s])
                        j = 1
                        while j + 1 < r:
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
                if G > 1:
                    rank[:] = 0.0
                    for g in range(G):
                        invz = np.float32(1.0) / Z[g]
                        mg = M[g]
                        xg = xs[g]
                        for s in range(n_pos):
                            rank[s] += fexp(xg[s] - mg) * invz
                thresh = select_threshold(rank, n_pos, kk, cvals)
                pos = 0 if thresh > -np.inf else n_pos
            if w > lo:
                # ---- step 2 of the previous item; the current item's candidate pass rides along
                base = (pb * Hkv + ph) * S
                prefetch_first_rows(K, base, i2, k, d, line_k)
                for j in range(k):
                    prefetch_rows_ahead(K, base, i2, j, k, d, line_k)
                    krow = K[pb, ph, i2[j]]
                    for g in range(G):
                        qrow = pq[g]
                        dot = np.float32(0.0)
                        for i in range(d):
                            dot += qrow[i] * to_f32(krow[i])
                        sc[g, j] = dot * scale
                    if pos < n_pos:
                        end = min(n_pos, pos + per_row)
                        nc = collect_candidates(rank, pos, end, thresh, cand, nc)
                        pos = end
                for g in range(G):
                    srow = sc[g]
                    mx = srow[0]
                    for j in range(k):
                        mx = max(mx, srow[j])
                    tt = np.float32(0.0)
                    for j in range(k):
                        p = fexp(srow[j] - mx)
                        srow[j] = p
                        tt += p
                    lsum[g] = tt
                acc[:] = 0.0
                prefetch_first_rows(V, base, i2, k, d, line_v)
                for j in range(k):
                    prefetch_rows_ahead(V, base, i2, j, k, d, line_v)
                    vrow = V[pb, ph, i2[j]]
                    for g in range(G):
                        p = sc[g, j]
                        arow = acc[g]
                        for i in range(d):
                            arow[i] += p * to_f32(vrow[i])
                    if pos < n_pos:
                        end = min(n_pos, pos + per_row)
                        nc = collect_candidates(rank, pos, end, thresh, cand, nc)
                        pos = end
                for g in range(G):
                    inv = np.float32(1.0) / lsum[g]
                    if reallocate:
                        al = palpha[g]
                        for i in range(d):
                            out[pb, ph * G + g, i] = al * acc[g, i] * inv + (np.float32(1.0) - al) * vbar[pb, ph, i]
                    else:
                        for i in range(d):
                            out[pb, ph * G + g, i] = acc[g, i] * inv
            if cur:
                # ---- selection of the current item finished; its gathers run in the next turn
                if pos < n_pos:
                    nc = collect_candidates(rank, pos, n_pos, thresh, cand, nc)
                select_finish(rank, n_pos, kk, i2, cand, cvals, nc, thresh)
                for tw in range(l):
                    i2[kk + tw] = n_pos + tw
                for g in range(G):
                    sa = np.float32(0.0)
                    for j in range(k):
                        sa += fexp(xs[g, i2[j]] - M[g])
                    palpha[g] = min(np.float32(1.0), sa / Z[g])
                    for i in range(d):
                        pq[g, i] = qg[g, i]
                pb = b
                ph = h


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
