"""Pieces shared by the Triton attention kernels that walk rows of one (batch, KV head) group:
loading the group's query rows and one online-softmax step over a block of K and V rows."""

import triton
import triton.language as tl


@triton.jit
def load_group_queries(q_ptr, row0, scale,
                       G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr):
    """The G query rows from row `row0` (a group's first query head), times `scale`: (G_PAD, D_PAD) fp32."""
    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D_PAD)
    mask = (offs_g < G)[:, None] & (offs_d < D)[None, :]
    q = tl.load(q_ptr + (row0 + offs_g)[:, None] * D + offs_d[None, :], mask=mask, other=0.0)
    return q.to(tl.float32) * scale


@triton.jit
def attend_block(qg, k_rows, v_rows, row_ok, m, lsum, acc):
    """Online softmax over one block: scores of the G queries against the block's K rows (rows not
    `row_ok` masked out), running max `m`, sum `lsum` and unnormalised output `acc` updated."""
    sc = tl.sum(qg[:, None, :] * k_rows[None, :, :], axis=2)                       # (G_PAD, BLOCK)
    sc = tl.where(row_ok[None, :], sc, float("-inf"))
    m_new = tl.maximum(m, tl.max(sc, axis=1))
    corr = tl.exp(m - m_new)
    p = tl.exp(sc - m_new[:, None])
    lsum = lsum * corr + tl.sum(p, axis=1)
    acc = acc * corr[:, None] + tl.sum(p[:, :, None] * v_rows[None, :, :], axis=1)
    return m_new, lsum, acc
