"""Fast CPU dense attention for one decoding step (numba, multi-threaded, cached compile).

One work item per (batch, KV head, sequence split): it streams its K rows and V rows block by
block with an online softmax (scores for all G query heads of the group from each K row, d_h
loop innermost and contiguous), so K and V are each read once, whatever the group size.
Sequence splits (combined afterwards) keep both cores busy when B*Hkv is small.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from sparq_sim.kernels.cpu_util import FASTMATH_NO_INF, add_weighted_row, fexp, score_row

BLOCK = 128  # positions per softmax block: scores of a block stay in L1


@njit(parallel=True, fastmath=FASTMATH_NO_INF, cache=True)
def dense_partials(q, K, V, n_split, m_out, l_out, acc_out):
    """Partial softmax state per (b, kv head, split): max m, sum l and unnormalised acc."""
    B, Hq, d = q.shape
    Hkv, S = K.shape[1], K.shape[2]
    G = Hq // Hkv
    scale = np.float32(1.0 / math.sqrt(d))
    one = np.float32(1.0)               # q is scaled once, below
    chunk = (S + n_split - 1) // n_split
    for w in prange(B * Hkv * n_split):
        b = w // (Hkv * n_split)
        h = (w // n_split) % Hkv
        sp = w % n_split
        lo = sp * chunk
        hi = min(S, lo + chunk)
        qs = np.empty((G, d), np.float32)
        for g in range(G):
            for i in range(d):
                qs[g, i] = q[b, h * G + g, i] * scale
        m = np.full(G, -np.inf, np.float32)
        l = np.zeros(G, np.float32)
        acc = np.zeros((G, d), np.float32)
        sc = np.empty((G, BLOCK), np.float32)
        for s0 in range(lo, hi, BLOCK):
            n = min(BLOCK, hi - s0)
            for j in range(n):                  # row slices indexed from 0: no wraparound tests, vectorises
                score_row(qs, K[b, h, s0 + j], sc, j, one)
            for g in range(G):
                bm = sc[g, 0]
                for j in range(1, n):
                    bm = max(bm, sc[g, j])
                new_m = max(m[g], bm)
                if m[g] > -np.inf and new_m > m[g]:
                    corr = fexp(m[g] - new_m)
                    l[g] *= corr
                    for i in range(d):
                        acc[g, i] *= corr
                m[g] = new_m
                ssum = np.float32(0.0)
                for j in range(n):
                    p = fexp(sc[g, j] - new_m)
                    sc[g, j] = p
                    ssum += p
                l[g] += ssum
            for j in range(n):
                add_weighted_row(acc, sc, j, V[b, h, s0 + j])
        for g in range(G):
            m_out[w, g] = m[g]
            l_out[w, g] = l[g]
            for i in range(d):
                acc_out[w, g, i] = acc[g, i]


@njit(cache=True, fastmath=FASTMATH_NO_INF)
def combine_partials(m_p, l_p, acc_p, n_split, out):
    """Merge the splits of each (b, kv head): out (B, Hq, d) float32."""
    B, Hq, d = out.shape
    W, G = m_p.shape
    Hkv = Hq // G
    for wi in range(W // n_split):
        b = wi // Hkv
        h = wi % Hkv
        for g in range(G):
            mm = -np.inf
            for sp in range(n_split):
                mm = max(mm, m_p[wi * n_split + sp, g])
            tot = np.float32(0.0)
            for i in range(d):
                out[b, h * G + g, i] = 0.0
            for sp in range(n_split):
                w = wi * n_split + sp
                if l_p[w, g] == 0.0:
                    continue
                c = fexp(m_p[w, g] - mm)
                tot += c * l_p[w, g]
                for i in range(d):
                    out[b, h * G + g, i] += c * acc_p[w, g, i]
            inv = np.float32(1.0) / tot
            for i in range(d):
                out[b, h * G + g, i] *= inv


def n_splits(items: int, seq: int, threads: int) -> int:
    """Sequence splits per item so that there are at least 2 work items per thread."""
    want = max(1, -(-2 * threads // items))
    return max(1, min(want, seq // (4 * BLOCK) or 1))


def dense(q, K, V, out, threads):
    """q (B,Hq,d) float32; K, V (B,Hkv,S,d) float32/uint16(fp16)/int16(bf16); out (B,Hq,d) float32."""
    B, Hq, d = q.shape
    Hkv, S = K.shape[1], K.shape[2]
    G = Hq // Hkv
    ns = n_splits(B * Hkv, S, threads)
    W = B * Hkv * ns
    m_p = np.empty((W, G), np.float32)
    l_p = np.empty((W, G), np.float32)
    acc_p = np.empty((W, G, d), np.float32)
    dense_partials(q, K, V, ns, m_p, l_p, acc_p)
    combine_partials(m_p, l_p, acc_p, ns, out)
    return out
