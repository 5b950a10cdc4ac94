"""torch-facing wrappers of the Triton kernels: buffers, grids, block sizes, launches.

SparQ is three launches (triton_step1, triton_select, triton_step2) plus allocations; dense is
one (triton_dense). On a CPU-only machine they run under the Triton interpreter
(TRITON_INTERPRET=1 set before triton is imported), which checks correctness only.
Inputs: K, V contiguous (B, Hkv, S, d_h); K_t contiguous (B, Hkv, d_h, S) or None (then step 1
reads r scattered components of position-major K). Any float dtype; arithmetic is float32.
The result has q's dtype.
"""

from __future__ import annotations

import math

import torch

from sparq_sim.errors import UserError

BLOCK_S1 = 128      # positions per step-1 program
BLOCK_SEL = 256     # positions per chunk in the selection passes
BLOCK_K = 32        # gathered rows per step-2 iteration
BLOCK_DENSE = 64    # positions per dense iteration


def _pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def _check_device(*tensors):
    import os
    dev = tensors[0].device
    if dev.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise UserError("impl 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for the CPU interpreter)")
    for t in tensors:
        if t is not None and t.device != dev:
            raise UserError(f"impl 'triton': all tensors must be on {dev}, got one on {t.device}")


def dense_attention(q, K, V):
    from sparq_sim.kernels.triton_dense import dense_kernel
    _check_device(q, K, V)
    B, Hq, d = q.shape
    Hkv, S = K.shape[1], K.shape[2]
    G = Hq // Hkv
    q32 = q.contiguous().float()
    out = torch.empty((B, Hq, d), dtype=torch.float32, device=q.device)
    dense_kernel[(B * Hkv,)](q32, K.contiguous(), V.contiguous(), out, S, 1.0 / math.sqrt(d),
                             G=G, G_PAD=_pow2(G), D=d, D_PAD=_pow2(d), BLOCK_S=BLOCK_DENSE)
    return out.to(q.dtype)


def sparq_attention(q, K, V, *, r, k, local_window=0, reallocate=True, v_mean=None, K_t=None):
    from sparq_sim.kernels.triton_select import sparq_select_kernel
    from sparq_sim.kernels.triton_step1 import sparq_step1_kernel
    from sparq_sim.kernels.triton_step2 import sparq_step2_kernel
    _check_device(q, K, V, K_t, v_mean)
    B, Hq, d = q.shape
    Hkv, S = K.shape[1], K.shape[2]
    G = Hq // Hkv
    dev = q.device
    q32 = q.contiguous().float()
    K = K.contiguous()
    V = V.contiguous()
    if K_t is not None:
        src = K_t.contiguous()
        strides = (Hkv * d * S, d * S, S, 1)          # (b, h, component, position)
    else:
        src = K
        strides = (Hkv * S * d, S * d, 1, d)
    n_blocks = triton_cdiv(S, BLOCK_S1)
    x = torch.empty((B, Hq, S), dtype=torch.float32, device=dev)
    m_blk = torch.empty((B, Hq, n_blocks), dtype=torch.float32, device=dev)
    z_blk = torch.empty((B, Hq, n_blocks), dtype=torch.float32, device=dev)
    G_PAD, D_PAD = _pow2(G), _pow2(d)
    sparq_step1_kernel[(B * Hkv, n_blocks)](q32, src, x, m_blk, z_blk, S, r, Hkv, n_blocks, *strides,
                                            G=G, G_PAD=G_PAD, D=d, D_PAD=D_PAD, R_PAD=_pow2(r),
                                            BLOCK_S=BLOCK_S1)
    idx = torch.empty((B, Hkv, k), dtype=torch.int32, device=dev)
    alpha = torch.empty((B, Hq), dtype=torch.float32, device=dev)
    sparq_select_kernel[(B * Hkv,)](x, m_blk, z_blk, idx, alpha, S, k, local_window, n_blocks,
                                    G=G, G_PAD=G_PAD, NB_PAD=_pow2(n_blocks), BLOCK=BLOCK_SEL)
    if reallocate:
        vbar = (V.float().mean(dim=2) if v_mean is None else v_mean.float()).contiguous()
    else:
        vbar = alpha  # unused placeholder
    out = torch.empty((B, Hq, d), dtype=torch.float32, device=dev)
    sparq_step2_kernel[(B * Hkv,)](q32, K, V, idx, alpha, vbar, out, S, k, 1.0 / math.sqrt(d),
                                   G=G, G_PAD=G_PAD, D=d, D_PAD=D_PAD, BLOCK_K=BLOCK_K,
                                   REALLOCATE=bool(reallocate))
    return out.to(q.dtype)


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)
