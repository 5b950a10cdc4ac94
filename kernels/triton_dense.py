"""Triton kernel: dense attention for one decoding step (online softmax), one launch.

Grid (B * Hkv,). One program per (batch, KV head) streams its K and V rows in blocks of
BLOCK_S positions for all G query heads of the group (K and V read once per group).
"""

import triton
import triton.language as tl

from sparq_sim.kernels.triton_common import attend_block, load_group_queries


@triton.jit
def dense_kernel(q_ptr, k_ptr, v_ptr, out_ptr, S, scale,
                 G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr,
                 BLOCK_S: tl.constexpr):
    pid = tl.program_id(0)
    row0 = pid * G                     # program pid = b * Hkv + h: its group's first query head
    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D_PAD)
    g_ok = offs_g < G
    d_ok = offs_d < D
    qg = load_group_queries(q_ptr, row0, scale, G, G_PAD, D, D_PAD)
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
        v_rows = tl.load(v_ptr + rows, mask=rmask, other=0.0).to(tl.float32)
        m, lsum, acc = attend_block(qg, k_rows, v_rows, s_ok, m, lsum, acc)
    y = acc / lsum[:, None]
    tl.store(out_ptr + (row0 + offs_g)[:, None] * D + offs_d[None, :], y, mask=g_ok[:, None] & d_ok[None, :])
