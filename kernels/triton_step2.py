"""Triton kernel: SparQ step 2 and 3, the k row gathers fused into the dot products.

Grid (B * Hkv,). One program per (batch, KV head) walks the k chosen positions in blocks of
BLOCK_K: it loads the whole K rows at those positions straight from the position-major cache
(no gathered copy), scores all G query heads of the group, keeps an online softmax, loads the
V rows and accumulates; at the end it mixes in the value mean by alpha (REALLOCATE).
"""

import triton
import triton.language as tl

from sparq_sim.kernels.triton_common import attend_block, load_group_queries


@triton.jit
def sparq_step2_kernel(q_ptr, k_ptr, v_ptr, idx_ptr, alpha_ptr, vbar_ptr, out_ptr,
                       S, k, scale,
                       G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr,
                       BLOCK_K: tl.constexpr, REALLOCATE: tl.constexpr):
    pid = tl.program_id(0)
    row0 = pid * G                     # program pid = b * Hkv + h: its group's first query head
    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D_PAD)
    g_ok = offs_g < G
    d_ok = offs_d < D
    qg = load_group_queries(q_ptr, row0, scale, G, G_PAD, D, D_PAD)
    kv_base = pid.to(tl.int64) * S * D                      # (b, h) slab of K and V: (S, D)
    m = tl.full((G_PAD,), float("-inf"), tl.float32)
    lsum = tl.zeros((G_PAD,), tl.float32)
    acc = tl.zeros((G_PAD, D_PAD), tl.float32)
    for j0 in range(0, k, BLOCK_K):
        offs_j = j0 + tl.arange(0, BLOCK_K)
        j_ok = offs_j < k
        pos = tl.load(idx_ptr + pid * k + offs_j, mask=j_ok, other=0)
        rows = kv_base + pos[:, None].to(tl.int64) * D + offs_d[None, :]
        rmask = j_ok[:, None] & d_ok[None, :]
        k_rows = tl.load(k_ptr + rows, mask=rmask, other=0.0).to(tl.float32)         # (BLOCK_K, D_PAD)
        v_rows = tl.load(v_ptr + rows, mask=rmask, other=0.0).to(tl.float32)
        m, lsum, acc = attend_block(qg, k_rows, v_rows, j_ok, m, lsum, acc)
    y = acc / lsum[:, None]
    if REALLOCATE:
        alpha = tl.load(alpha_ptr + row0 + offs_g, mask=g_ok, other=1.0)
        vbar = tl.load(vbar_ptr + pid * D + offs_d, mask=d_ok, other=0.0).to(tl.float32)
        y = alpha[:, None] * y + (1.0 - alpha[:, None]) * vbar[None, :]
    tl.store(out_ptr + (row0 + offs_g)[:, None] * D + offs_d[None, :], y, mask=g_ok[:, None] & d_ok[None, :])
