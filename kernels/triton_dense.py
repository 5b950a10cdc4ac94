"""Triton kernel: dense attention for one decoding step (online softmax), one launch.

Grid (B * Hkv,). One program per (batch, KV head) streams its K and V rows in blocks of
BLOCK_S positions for all G query heads of the group (K and V read once per group).
"""

import triton
import triton.language as tl


@triton.jit
def dense_kernel(q_ptr, k_ptr, v_ptr, out_ptr, S, HKV, scale,
                 G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr,
                 BLOCK_S: tl.constexpr):
    pid = tl.program_id(0)
    b = pid // HKV
    h = pid % HKV
    row0 = b * HKV * G + h * G
    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D_PAD)
    g_ok = offs_g < G
    d_ok = offs_d < D
    qg = tl.load(q_ptr + (row0 + offs_g)[:, None] * D + offs_d[None, :],
                 mask=g_ok[:, None] & d_ok[None, :], other=0.0).to(tl.float32) * scale
    kv_base = pid.to(tl.int64) * S * D
    m = tl.full((G_PAD,), float("-inf"), tl.float32)
    lsum = tl.zeros((G_PAD,), tl.float32)
    acc = tl.zeros((G_PAD, D_PAD), tl.float32)
    for s0 in range(0, S, BLOCK_S):
        offs_s = s0 + tl.arange(0, BLOCK_S)
        s_ok = offs_s < S
        rows = kv_base + offs_s[:, None] * D + offs_d[None, :]
        rmask = s_ok[:, None] & d_ok[None, :]
        k_rows = tl.load(k_ptr + rows, mask=rmask, other=0.0).to(tl.float32)
        sc = tl.sum(qg[:, None, :] * k_rows[None, :, :], axis=2)
        sc = tl.where(s_ok[None, :], sc, float("-inf"))
        m_new = tl.maximum(m, tl.max(sc, axis=1))
        corr = tl.exp(m - m_new)
        p = tl.exp(sc - m_new[:, None])
        lsum = lsum * corr + tl.sum(p, axis=1)
        v_rows = tl.load(v_ptr + rows, mask=rmask, other=0.0).to(tl.float32)
        acc = acc * corr[:, None] + tl.sum(p[:, :, None] * v_rows[None, :, :], axis=1)
        m = m_new
    y = acc / lsum[:, None]
    tl.store(out_ptr + (row0 + offs_g)[:, None] * D + offs_d[None, :], y, mask=g_ok[:, None] & d_ok[None, :])
