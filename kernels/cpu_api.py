"""torch-facing wrappers of the numba CPU kernels: storage views, dtypes, output.

KV storage: float32 as is; float16 and bfloat16 passed as their 16-bit patterns (uint16 and
int16 views, no copy) and converted on load; float64 is cast to float32 (a copy). q and the
value mean are taken as float32. Arithmetic is float32; the result has q's dtype.
Inputs must be CPU tensors. A view whose last dimension has unit stride (the first S positions
of a preallocated cache, as ``decoding.SparqDecoder`` passes them) is read in place; other
non-contiguous tensors are made contiguous (a copy).
"""

from __future__ import annotations

import numpy as np
import torch

from sparq_sim.errors import UserError


def kv_array(t: torch.Tensor, name: str) -> np.ndarray:
    """A numpy view of a CPU KV tensor in a format the kernels load: float32, uint16 (fp16), int16 (bf16)."""
    if t.device.type != "cpu":
        raise UserError(f"impl 'cpu' needs CPU tensors, {name} is on {t.device}")
    t = t.detach()
    if not t.is_contiguous() and (t.stride(-1) != 1 or min(t.stride()) < 0):
        t = t.contiguous()   # rows of unit stride are passed as a strided view (a cache's prefix), no copy
    if t.dtype == torch.float32:
        return t.numpy()
    if t.dtype == torch.float16:
        return t.view(torch.int16).numpy().view(np.uint16)
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy()
    if t.dtype == torch.float64:
        return t.to(torch.float32).numpy()
    raise UserError(f"impl 'cpu' stores KV as float32, float16 or bfloat16, {name} is {t.dtype}")


def f32_array(t: torch.Tensor, name: str) -> np.ndarray:
    if t.device.type != "cpu":
        raise UserError(f"impl 'cpu' needs CPU tensors, {name} is on {t.device}")
    return t.detach().to(torch.float32).contiguous().numpy()


def threads() -> int:
    import numba
    return numba.get_num_threads()


def dense_attention(q, K, V):
    from sparq_sim.kernels import cpu_dense
    qa = f32_array(q, "q")
    out = np.empty(qa.shape, np.float32)
    cpu_dense.dense(qa, kv_array(K, "K"), kv_array(V, "V"), out, threads())
    return torch.from_numpy(out).to(q.dtype)


def sparq_attention(q, K, V, *, r, k, local_window=0, reallocate=True, v_mean=None, K_t=None):
    from sparq_sim.kernels import cpu_sparq
    qa = f32_array(q, "q")
    Ka, Va = kv_array(K, "K"), kv_array(V, "V")
    if K_t is not None:
        Kta = kv_array(K_t, "K_t")
        if Kta.dtype != Ka.dtype:   # one compiled variant per storage format
            Kta = kv_array(K_t.to(K.dtype), "K_t")
    else:
        Kta = np.zeros((1, 1, 1, 1), Ka.dtype)
    B, Hkv, _, d = K.shape
    if not reallocate:
        vbar = np.zeros((1, 1, 1), np.float32)
    elif v_mean is None:
        vbar = V.detach().to(torch.float32).mean(dim=2).contiguous().numpy()
    else:
        vbar = f32_array(v_mean, "v_mean")
    out = np.empty(qa.shape, np.float32)
    import numba
    ws = cpu_sparq.workspace(numba.config.NUMBA_NUM_THREADS, q.shape[1] // K.shape[1], K.shape[2], int(k))
    settings = cpu_sparq.Settings(r=int(r), k=int(k), local_window=int(local_window), reallocate=bool(reallocate),
                                  use_kt=K_t is not None)
    cpu_sparq.sparq_kernel(qa, Ka, Va, Kta, vbar, out, settings, ws)
    return torch.from_numpy(out).to(q.dtype)
