"""Triton kernel: SparQ step 1 (approximate scores) with per-block softmax statistics.

Grid (B * Hkv, cdiv(S, BLOCK_S)). Each program recomputes, from q alone, the group's r
components i1 (top r of sum_g |q_g|, by rank counting over d_h) and each head's tau, then
reads only the r selected component rows of K for its block of positions: with K_t
(component-major, stride_kd = S, stride_ks = 1) these are contiguous runs; with K stored once
(stride_kd = 1, stride_ks = d_h) they are scattered elements of each row. It writes the
scaled approximate scores x = q[i1] . K[:, i1] / tau (B, Hq, S) and, per head and block, the
max m and sum of exp(x - m), so the softmax normalisers are never a separate pass.
"""

import triton
import triton.language as tl


@triton.jit
def sparq_step1_kernel(q_ptr, k_ptr, x_ptr, m_ptr, z_ptr,
                       S, r, HKV, n_blocks,
                       stride_kb, stride_kh, stride_kd, stride_ks,
                       G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr,
                       R_PAD: tl.constexpr, BLOCK_S: tl.constexpr):
    pid_w = tl.program_id(0)
    pid_s = tl.program_id(1)
    b = (pid_w // HKV).to(tl.int64)
    h = pid_w % HKV
    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D_PAD)
    offs_t = tl.arange(0, R_PAD)
    g_ok = offs_g < G
    d_ok = offs_d < D
    heads = h * G + offs_g                                              # query heads of the group
    q_rows = q_ptr + (b * HKV * G + heads)[:, None] * D + offs_d[None, :]
    qg = tl.load(q_rows, mask=g_ok[:, None] & d_ok[None, :], other=0.0).to(tl.float32)   # (G_PAD, D_PAD)
    aq = tl.abs(qg)
    a = tl.where(d_ok, tl.sum(aq, axis=0), -1.0)                        # (D_PAD,), padding ranks last
    # rank of component j: how many components come before it (larger, or equal with a lower index)
    before = (a[:, None] > a[None, :]) | ((a[:, None] == a[None, :]) & (offs_d[:, None] < offs_d[None, :]))
    rank = tl.sum(before.to(tl.int32), axis=0)                          # (D_PAD,)
    chosen = rank < r
    # i1[t] = the component of rank t
    i1 = tl.sum(tl.where(rank[None, :] == offs_t[:, None], offs_d[None, :], 0), axis=1)   # (R_PAD,)
    t_ok = offs_t < r
    part = tl.sum(tl.where(chosen[None, :], aq, 0.0), axis=1)
    total = tl.where(g_ok, tl.sum(aq, axis=1), 1.0)
    tau = tl.where(g_ok & (part > 0), tl.sqrt(D * part / total), 1.0)          # (G_PAD,); padded heads 1
    q_hat = tl.load(q_ptr + (b * HKV * G + heads)[:, None] * D + i1[None, :],
                    mask=g_ok[:, None] & t_ok[None, :], other=0.0).to(tl.float32) / tau[:, None]  # (G_PAD, R_PAD)
    # the r component rows of K for this block of positions
    offs_s = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
    s_ok = offs_s < S
    k_tile = tl.load(k_ptr + b * stride_kb + h * stride_kh + i1[:, None] * stride_kd + offs_s[None, :] * stride_ks,
                     mask=t_ok[:, None] & s_ok[None, :], other=0.0).to(tl.float32)         # (R_PAD, BLOCK_S)
    x = tl.sum(q_hat[:, :, None] * k_tile[None, :, :], axis=1)                             # (G_PAD, BLOCK_S)
    x = tl.where(s_ok[None, :], x, float("-inf"))
    tl.store(x_ptr + (b * HKV * G + heads)[:, None] * S + offs_s[None, :], x,
             mask=g_ok[:, None] & s_ok[None, :])
    m = tl.max(x, axis=1)                                                                   # (G_PAD,)
    z = tl.sum(tl.exp(x - m[:, None]), axis=1)
    stat = (b * HKV * G + heads) * n_blocks + pid_s
    tl.store(m_ptr + stat, m, mask=g_ok)
    tl.store(z_ptr + stat, z, mask=g_ok)
