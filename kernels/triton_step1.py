"""Triton kernel: SparQ step 1 (approximate scores) with per-block softmax statistics.

Grid (B * Hkv, cdiv(S, BLOCK_S)). Each program recomputes, from q alone, the group's r
components i1 (top r of sum_g |q_g|, by rank counting over d_h) and each head's tau, then
reads only the r selected component rows of K for its block of positions: with K_t
(component-major, stride_kd = S, stride_ks = 1) these are contiguous runs; with K stored once
(stride_kd = 1, stride_ks = d_h) they are scattered elements of each row. It writes the
scaled approximate scores x = q[i1] . K[:, i1] / tau (B, Hq, S) and, per head and block, the
max m and sum of exp(x - m), so the softmax normalisers are never a separate pass.

    TRITON_INTERPRET=1 python -m sparq_sim.kernels.triton_step1   # check() on the CPU
    python -m sparq_sim.kernels.triton_step1 --bench              # check() and bench() on a GPU
"""

import triton
import triton.language as tl

from sparq_sim.kernels.triton_common import pow2

BLOCK_S = 128   # positions per program


@triton.jit
def top_components(qg, r, D: tl.constexpr, D_PAD: tl.constexpr, R_PAD: tl.constexpr):
    """i1 (R_PAD,): the r components with the largest sum over the group of |q| (ties by index),
    by counting for each component how many come before it; and which of the D_PAD are chosen."""
    offs_d = tl.arange(0, D_PAD)
    offs_t = tl.arange(0, R_PAD)
    a = tl.where(offs_d < D, tl.sum(tl.abs(qg), axis=0), -1.0)          # (D_PAD,), padding ranks last
    before = (a[:, None] > a[None, :]) | ((a[:, None] == a[None, :]) & (offs_d[:, None] < offs_d[None, :]))
    rank = tl.sum(before.to(tl.int32), axis=0)                          # (D_PAD,)
    i1 = tl.sum(tl.where(rank[None, :] == offs_t[:, None], offs_d[None, :], 0), axis=1)   # i1[t]: rank t
    return i1, rank < r


@triton.jit
def temperatures(qg, chosen, g_ok, D: tl.constexpr):
    """tau_g = sqrt(d_h * sum |q_g[i1]| / sum |q_g|) (G_PAD,); padded heads and q_g[i1] = 0 get 1."""
    aq = tl.abs(qg)
    part = tl.sum(tl.where(chosen[None, :], aq, 0.0), axis=1)
    total = tl.where(g_ok, tl.sum(aq, axis=1), 1.0)
    return tl.where(g_ok & (part > 0), tl.sqrt(D * part / total), 1.0)


@triton.jit
def approximate_scores(k_ptr, k_base, i1, t_ok, q_hat, offs_s, s_ok, stride_kd, stride_ks):
    """x (G_PAD, BLOCK_S) = q_hat . K[offs_s, i1] from the r component rows of K (positions not
    `s_ok`: -inf)."""
    k_tile = tl.load(k_ptr + k_base + i1[:, None] * stride_kd + offs_s[None, :] * stride_ks,
                     mask=t_ok[:, None] & s_ok[None, :], other=0.0).to(tl.float32)        # (R_PAD, BLOCK_S)
    x = tl.sum(q_hat[:, :, None] * k_tile[None, :, :], axis=1)
    return tl.where(s_ok[None, :], x, float("-inf"))


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
    g_ok = offs_g < G
    heads = b * HKV * G + h * G + offs_g                                # flat query rows of the group
    qg = tl.load(q_ptr + heads[:, None] * D + offs_d[None, :],
                 mask=g_ok[:, None] & (offs_d < D)[None, :], other=0.0).to(tl.float32)   # (G_PAD, D_PAD)
    i1, chosen = top_components(qg, r, D, D_PAD, R_PAD)
    t_ok = tl.arange(0, R_PAD) < r
    tau = temperatures(qg, chosen, g_ok, D)
    q_hat = tl.load(q_ptr + heads[:, None] * D + i1[None, :],
                    mask=g_ok[:, None] & t_ok[None, :], other=0.0).to(tl.float32) / tau[:, None]  # (G_PAD, R_PAD)
    offs_s = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
    s_ok = offs_s < S
    x = approximate_scores(k_ptr, b * stride_kb + h * stride_kh, i1, t_ok, q_hat, offs_s, s_ok,
                           stride_kd, stride_ks)
    tl.store(x_ptr + heads[:, None] * S + offs_s[None, :], x, mask=g_ok[:, None] & s_ok[None, :])
    m = tl.max(x, axis=1)                                               # the block's softmax statistics
    z = tl.sum(tl.exp(x - m[:, None]), axis=1)
    stat = heads * n_blocks + pid_s
    tl.store(m_ptr + stat, m, mask=g_ok)
    tl.store(z_ptr + stat, z, mask=g_ok)


def launch(q32, K, r: int, K_t=None):
    """(x (B, Hq, S), m, z (B, Hq, n_blocks)) fp32 from q32 (B, Hq, d) fp32 and contiguous K
    (B, Hkv, S, d), reading K_t (B, Hkv, d, S) when given."""
    import torch
    B, Hq, d = q32.shape
    Hkv, S = K.shape[1], K.shape[2]
    G = Hq // Hkv
    if K_t is not None:
        src, strides = K_t, (Hkv * d * S, d * S, S, 1)       # (b, h, component, position)
    else:
        src, strides = K, (Hkv * S * d, S * d, 1, d)
    n_blocks = triton.cdiv(S, BLOCK_S)
    dev = q32.device
    x = torch.empty((B, Hq, S), dtype=torch.float32, device=dev)
    m = torch.empty((B, Hq, n_blocks), dtype=torch.float32, device=dev)
    z = torch.empty((B, Hq, n_blocks), dtype=torch.float32, device=dev)
    sparq_step1_kernel[(B * Hkv, n_blocks)](q32, src, x, m, z, S, r, Hkv, n_blocks, *strides,
                                            G=G, G_PAD=pow2(G), D=d, D_PAD=pow2(d), R_PAD=pow2(r),
                                            BLOCK_S=BLOCK_S)
    return x, m, z


def softmax_from_blocks(x, m, z):
    """s_hat (B, Hq, S) float64 from the scores and their per-block statistics (as the selection folds them)."""
    M = m.double().max(dim=-1, keepdim=True).values
    Z = (z.double() * (m.double() - M).exp()).sum(dim=-1, keepdim=True)
    return (x.double() - M).exp() / Z


def check(B=1, Hq=4, Hkv=2, S=300, d=32, r=6) -> float:
    """Max abs error of s_hat (from x and the block statistics) against the float64 reference,
    with K_t and without (raises above 2e-5)."""
    from sparq_sim.kernels import reference
    from sparq_sim.kernels.triton_common import example_inputs, f64, max_error
    q, K, V, Kt = example_inputs(B, Hq, Hkv, S, d, seed=3)
    _, _, s_hat, _, _ = reference.sparq_selection(*f64(q, K), r, r, 0, *f64(Kt))
    want = s_hat.reshape(B, Hq, S)
    return max(max_error(softmax_from_blocks(*launch(q.float(), K, r, kt)).cpu(), want, f"triton step 1 ({how})")
               for kt, how in ((Kt, "K_t"), (None, "K once")))


def bench(B=16, H=32, S=32768, d=128, r=32, dtype="float16") -> dict:
    """Median time of one launch on the GPU (with K_t) and its ideal bytes / median."""
    import torch

    from sparq_sim.kernels.triton_common import example_inputs, time_gpu
    q, K, _, Kt = example_inputs(B, H, H, S, d, dtype=getattr(torch, dtype))
    t = time_gpu(launch, lambda: (q.float(), K, r, Kt))
    ideal = B * H * r * S * K.element_size()
    return {"median_s": t.median_s, "GBps": ideal / t.median_s / 1e9}


if __name__ == "__main__":
    import sys
    print(f"check: max abs error {check():.2e}")
    if "--bench" in sys.argv[1:]:
        print(f"bench: {bench()}")
