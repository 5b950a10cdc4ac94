"""Triton kernel: SparQ step 2 and 3, the k row gathers fused into the dot products.

Grid (B * Hkv,). One program per (batch, KV head) walks the k chosen positions in blocks of
BLOCK_K: it loads the whole K rows at those positions straight from the position-major cache
(no gathered copy), scores all G query heads of the group, keeps an online softmax, loads the
V rows and accumulates; at the end it mixes in the value mean by alpha (REALLOCATE).

    TRITON_INTERPRET=1 python -m sparq_sim.kernels.triton_step2   # check() on the CPU
    python -m sparq_sim.kernels.triton_step2 --bench              # check() and bench() on a GPU
"""

import math

import triton
import triton.language as tl

from sparq_sim.kernels.triton_common import (attend_rows, empty_softmax_state, load_group_queries, pow2,
                                             store_group_rows)

BLOCK_K = 32    # gathered rows per iteration


@triton.jit
def reallocate_mean(y, alpha_ptr, vbar_ptr, pid, row0,
                    G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr):
    """alpha_g of y_g and (1 - alpha_g) of the group's value mean: SparQ's reallocation."""
    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D_PAD)
    alpha = tl.load(alpha_ptr + row0 + offs_g, mask=offs_g < G, other=1.0)
    vbar = tl.load(vbar_ptr + pid * D + offs_d, mask=offs_d < D, other=0.0).to(tl.float32)
    return alpha[:, None] * y + (1.0 - alpha[:, None]) * vbar[None, :]


@triton.jit
def sparq_step2_kernel(q_ptr, k_ptr, v_ptr, idx_ptr, alpha_ptr, vbar_ptr, out_ptr,
                       S, k, scale,
                       G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr,
                       BLOCK_K: tl.constexpr, REALLOCATE: tl.constexpr):
    pid = tl.program_id(0)
    row0 = pid * G                     # program pid = b * Hkv + h: its group's first query head
    qg = load_group_queries(q_ptr, row0, scale, G, G_PAD, D, D_PAD)
    kv_base = pid.to(tl.int64) * S * D                      # (b, h) slab of K and V: (S, D)
    m, lsum, acc = empty_softmax_state(G_PAD, D_PAD)
    for j0 in range(0, k, BLOCK_K):                         # the chosen positions, in blocks
        offs_j = j0 + tl.arange(0, BLOCK_K)
        j_ok = offs_j < k
        pos = tl.load(idx_ptr + pid * k + offs_j, mask=j_ok, other=0)
        m, lsum, acc = attend_rows(qg, k_ptr, v_ptr, kv_base, pos, j_ok, m, lsum, acc, D, D_PAD)
    y = acc / lsum[:, None]
    if REALLOCATE:
        y = reallocate_mean(y, alpha_ptr, vbar_ptr, pid, row0, G, G_PAD, D, D_PAD)
    store_group_rows(out_ptr, row0, y, G, G_PAD, D, D_PAD)


def launch(q32, K, V, idx, alpha, vbar, reallocate: bool):
    """out (B, Hq, d) fp32 from the chosen positions idx (B, Hkv, k) int32, alpha (B, Hq) and the
    value mean vbar (B, Hkv, d) fp32 (any tensor when not `reallocate`)."""
    import torch
    B, Hq, d = q32.shape
    Hkv, S = K.shape[1], K.shape[2]
    G, k = Hq // Hkv, idx.shape[-1]
    out = torch.empty((B, Hq, d), dtype=torch.float32, device=q32.device)
    sparq_step2_kernel[(B * Hkv,)](q32, K, V, idx, alpha, vbar, out, S, k, 1.0 / math.sqrt(d),
                                   G=G, G_PAD=pow2(G), D=d, D_PAD=pow2(d), BLOCK_K=BLOCK_K,
                                   REALLOCATE=bool(reallocate))
    return out


def check(B=1, Hq=4, Hkv=2, S=120, d=32, r=6, k=37, local_window=4) -> float:
    """Max abs error against the float64 reference, given the reference's positions and alpha."""
    from sparq_sim.kernels import reference
    from sparq_sim.kernels.triton_common import example_inputs, f64, max_error
    q, K, V, Kt = example_inputs(B, Hq, Hkv, S, d, seed=2)
    q64, K64, V64, Kt64 = f64(q, K, V, Kt)
    _, _, _, i2, alpha = reference.sparq_selection(q64, K64, r, k, local_window, Kt64)
    idx = i2.to(q.device, dtype=reference.torch.int32).contiguous()
    alpha32 = alpha.reshape(B, Hq).to(q.device, dtype=reference.torch.float32).contiguous()
    vbar = V.float().mean(dim=2).contiguous()
    want = reference.sparq_attention(q64, K64, V64, r=r, k=k, local_window=local_window, K_t=Kt64)
    return max_error(launch(q.float(), K, V, idx, alpha32, vbar, True), want, "triton step 2")


def bench(B=16, H=32, S=32768, d=128, k=128, dtype="float16") -> dict:
    """Median time of one launch on the GPU (k random positions) and its ideal bytes / median."""
    import torch

    from sparq_sim.kernels.triton_common import example_inputs, time_gpu
    q, K, V, _ = example_inputs(B, H, H, S, d, dtype=getattr(torch, dtype))
    idx = torch.randint(0, S, (B, H, k), dtype=torch.int32, device=q.device)
    alpha = torch.full((B, H), 0.9, device=q.device)
    vbar = V.float().mean(dim=2)
    t = time_gpu(launch, lambda: (q.float(), K, V, idx, alpha, vbar, True))
    ideal = 2 * B * H * k * d * K.element_size()
    return {"median_s": t.median_s, "GBps": ideal / t.median_s / 1e9}


if __name__ == "__main__":
    import sys
    print(f"check: max abs error {check():.2e}")
    if "--bench" in sys.argv[1:]:
        print(f"bench: {bench()}")
