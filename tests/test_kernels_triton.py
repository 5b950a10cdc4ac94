"""Triton kernels against the float64 reference; on a CPU-only machine under TRITON_INTERPRET=1.

The interpreter checks correctness only and slowly, so the shapes stay tiny (S <= 256, B*H <= 4).
"""

import os

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")   # must precede the first import of triton
pytest.importorskip("triton")

from sparq_sim.kernels import dense_attention, sparq_attention  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def make(B, Hq, Hkv, S, d, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Hq, d, generator=g)
    K = torch.randn(B, Hkv, S, d, generator=g)
    V = torch.randn(B, Hkv, S, d, generator=g)
    return [t.to(DEVICE, dtype) for t in (q, K, V, K.transpose(-1, -2).contiguous())]


def f64(*ts):
    return [t.double().cpu() for t in ts]


@pytest.mark.parametrize("B,Hq,Hkv,S,d", [(1, 2, 2, 200, 32), (2, 2, 1, 64, 16)])
def test_triton_dense(B, Hq, Hkv, S, d):
    q, K, V, _ = make(B, Hq, Hkv, S, d, seed=1)
    y = dense_attention(q, K, V, impl="triton")
    torch.testing.assert_close(y.double().cpu(), dense_attention(*f64(q, K, V)), rtol=0, atol=2e-5)


@pytest.mark.parametrize("B,Hq,Hkv,S,d,r,k,l,realloc,store", [
    (1, 2, 2, 256, 32, 5, 40, 0, True, "twice"),
    (2, 2, 2, 130, 16, 4, 20, 3, False, "once"),
    (1, 4, 2, 200, 32, 6, 37, 4, True, "twice"),     # GQA: ranking by the group's summed s_hat
    (1, 3, 1, 100, 16, 16, 100, 0, True, "twice"),   # r = d_h, k = S: dense
])
def test_triton_sparq(B, Hq, Hkv, S, d, r, k, l, realloc, store):
    q, K, V, Kt = make(B, Hq, Hkv, S, d, seed=S + r)
    kt = Kt if store == "twice" else None
    y = sparq_attention(q, K, V, r=r, k=k, local_window=l, reallocate=realloc, K_t=kt, impl="triton")
    ref = sparq_attention(*f64(q, K, V), r=r, k=k, local_window=l, reallocate=realloc,
                          K_t=None if kt is None else kt.double().cpu())
    torch.testing.assert_close(y.double().cpu(), ref, rtol=0, atol=2e-5)
    if r == d and k == S:
        torch.testing.assert_close(y.double().cpu(), dense_attention(*f64(q, K, V)), rtol=0, atol=2e-5)


def test_triton_window_only():
    q, K, V, Kt = make(1, 2, 2, 64, 16, seed=3)
    y = sparq_attention(q, K, V, r=4, k=8, local_window=8, reallocate=False, K_t=Kt, impl="triton")
    ref = dense_attention(*f64(q, K[:, :, -8:], V[:, :, -8:]))
    torch.testing.assert_close(y.double().cpu(), ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_triton_16bit_finite(dtype):
    q, K, V, Kt = make(1, 2, 2, 128, 32, seed=4, dtype=dtype)
    y = sparq_attention(q, K, V, r=8, k=16, K_t=Kt, impl="triton")
    assert y.dtype == dtype and torch.isfinite(y).all()
    ref = sparq_attention(*f64(q, K, V), r=8, k=16, K_t=Kt.double().cpu())
    torch.testing.assert_close(y.double().cpu(), ref, rtol=1e-2, atol=1e-2)
