"""Triton kernel: dense attention for one decoding step (online softmax), one launch.

Grid (B * Hkv,). One program per (batch, KV head) streams its K and V rows in blocks of
BLOCK_S positions for all G query heads of the group (K and V read once per group).

    TRITON_INTERPRET=1 python -m sparq_sim.kernels.triton_dense   # check() on the CPU
    python -m sparq_sim.kernels.triton_dense --bench              # check() and bench() on a GPU
"""

import math

import triton
import triton.language as tl

from sparq_sim.kernels.triton_common import (attend_rows, empty_softmax_state, load_group_queries, pow2,
                                             store_group_rows)

BLOCK_S = 64    # positions per iteration


@triton.jit
def dense_kernel(q_ptr, k_ptr, v_ptr, out_ptr, S, scale,
                 G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr,
                 BLOCK_S: tl.constexpr):
    pid = tl.program_id(0)
    row0 = pid * G                     # program pid = b * Hkv + h: its group's first query head
    qg = load_group_queries(q_ptr, row0, scale, G, G_PAD, D, D_PAD)
    kv_base = pid.to(tl.int64) * S * D                      # (b, h) slab of K and V: (S, D)
    m, lsum, acc = empty_softmax_state(G_PAD, D_PAD)
    for s0 in range(0, S, BLOCK_S):                         # every position, in blocks
        offs_s = s0 + tl.arange(0, BLOCK_S)
        m, lsum, acc = attend_rows(qg, k_ptr, v_ptr, kv_base, offs_s, offs_s < S, m, lsum, acc, D, D_PAD)
    store_group_rows(out_ptr, row0, acc / lsum[:, None], G, G_PAD, D, D_PAD)


def launch(q32, K, V):
    """out (B, Hq, d) fp32 = dense attention of q32 (B, Hq, d) fp32 over contiguous K, V (B, Hkv, S, d)."""
    import torch
    B, Hq, d = q32.shape
    Hkv, S = K.shape[1], K.shape[2]
    G = Hq // Hkv
    out = torch.empty((B, Hq, d), dtype=torch.float32, device=q32.device)
    dense_kernel[(B * Hkv,)](q32, K, V, out, S, 1.0 / math.sqrt(d),
                             G=G, G_PAD=pow2(G), D=d, D_PAD=pow2(d), BLOCK_S=BLOCK_S)
    return out


def check(B=2, Hq=4, Hkv=2, S=150, d=32) -> float:
    """Max abs error against the float64 reference on a small GQA case (raises above 2e-5)."""
    from sparq_sim.kernels import reference
    from sparq_sim.kernels.triton_common import example_inputs, f64, max_error
    q, K, V, _ = example_inputs(B, Hq, Hkv, S, d, seed=1)
    return max_error(launch(q.float(), K, V), reference.dense_attention(*f64(q, K, V)), "triton dense")


def bench(B=16, H=32, S=32768, d=128, dtype="float16") -> dict:
    """Median time of one launch on the GPU and its ideal bytes / median."""
    import torch

    from sparq_sim.kernels.triton_common import example_inputs, time_gpu
    q, K, V, _ = example_inputs(B, H, H, S, d, dtype=getattr(torch, dtype))
    t = time_gpu(launch, lambda: (q.float(), K, V))
    ideal = 2 * K.numel() * K.element_size()
    return {"median_s": t.median_s, "GBps": ideal / t.median_s / 1e9}


if __name__ == "__main__":
    import sys
    print(f"check: max abs error {check():.2e}")
    if "--bench" in sys.argv[1:]:
        print(f"bench: {bench()}")
