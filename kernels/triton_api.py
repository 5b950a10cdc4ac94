"""torch-facing entry points of the Triton kernels: device checks, dtypes, and the launches in order.

SparQ is three launches (triton_step1, triton_select, triton_step2); dense is one (triton_dense).
Each kernel's file has its launch (buffers, grid, block sizes), its check() against the float64
reference and its bench(). On a CPU-only machine they run under the Triton interpreter
(TRITON_INTERPRET=1 set before triton is imported), which checks correctness only.
Inputs: K, V contiguous (B, Hkv, S, d_h); K_t contiguous (B, Hkv, d_h, S) or None (then step 1
reads r scattered components of position-major K). Any float dtype; arithmetic is float32.
The result has q's dtype.
"""

from __future__ import annotations

from sparq_sim.errors import UserError


def _check_device(*tensors):
    import os
    dev = tensors[0].device
    if dev.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise UserError("impl 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for the CPU interpreter)")
    for t in tensors:
        if t is not None and t.device != dev:
            raise UserError(f"impl 'triton': all tensors must be on {dev}, got one on {t.device}")


def dense_attention(q, K, V):
    from sparq_sim.kernels import triton_dense
    _check_device(q, K, V)
    return triton_dense.launch(q.contiguous().float(), K.contiguous(), V.contiguous()).to(q.dtype)


def sparq_attention(q, K, V, *, r, k, local_window=0, reallocate=True, v_mean=None, K_t=None):
    from sparq_sim.kernels import triton_select, triton_step1, triton_step2
    _check_device(q, K, V, K_t, v_mean)
    q32 = q.contiguous().float()
    K = K.contiguous()
    V = V.contiguous()
    x, m_blk, z_blk = triton_step1.launch(q32, K, r, None if K_t is None else K_t.contiguous())
    idx, alpha = triton_select.launch(x, m_blk, z_blk, K.shape[1], k, local_window)
    if reallocate:
        vbar = (V.float().mean(dim=2) if v_mean is None else v_mean.float()).contiguous()
    else:
        vbar = alpha  # unused placeholder
    return triton_step2.launch(q32, K, V, idx, alpha, vbar, reallocate).to(q.dtype)
