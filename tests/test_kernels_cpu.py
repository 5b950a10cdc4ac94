"""Fast CPU (numba) kernels against the float64 reference, on fresh random inputs. No timing here."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("numba")

from sparq_sim.kernels import dense_attention, sparq_attention  # noqa: E402


def make(B, Hq, Hkv, S, d, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Hq, d, generator=g)
    K = torch.randn(B, Hkv, S, d, generator=g)
    V = torch.randn(B, Hkv, S, d, generator=g)
    return q, K, V, K.transpose(-1, -2).contiguous()


def f64(*ts):
    return [None if t is None else t.double() for t in ts]


@pytest.mark.parametrize("B,Hq,Hkv,S,d", [(2, 4, 4, 200, 32), (1, 8, 2, 777, 64), (2, 3, 1, 50, 16),
                                          (1, 2, 1, 2100, 32)])   # last: sequence split into partials
def test_dense_cpu_matches_reference(B, Hq, Hkv, S, d):
    q, K, V, _ = make(B, Hq, Hkv, S, d, seed=S)
    ref = dense_attention(*f64(q, K, V))
    torch.testing.assert_close(dense_attention(q, K, V, impl="cpu").double(), ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("B,Hq,Hkv,S,d,r,k,l,realloc,store", [
    (2, 4, 4, 300, 32, 8, 40, 0, True, "twice"),
    (2, 4, 4, 300, 32, 8, 40, 4, False, "once"),
    (1, 8, 2, 300, 64, 16, 33, 5, True, "twice"),
    (1, 4, 1, 129, 16, 3, 17, 0, True, "once"),
    (1, 2, 2, 6000, 64, 8, 300, 16, True, "twice"),   # long enough for the sampled threshold
    (1, 4, 2, 5000, 32, 4, 100, 0, False, "twice"),   # GQA ranking with the sampled threshold
])
def test_sparq_cpu_matches_reference(B, Hq, Hkv, S, d, r, k, l, realloc, store):
    q, K, V, Kt = make(B, Hq, Hkv, S, d, seed=S + r)
    kt = Kt if store == "twice" else None
    ref = sparq_attention(*f64(q, K, V), r=r, k=k, local_window=l, reallocate=realloc,
                          K_t=None if kt is None else kt.double())
    y = sparq_attention(q, K, V, r=r, k=k, local_window=l, reallocate=realloc, K_t=kt, impl="cpu")
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=2e-5)
    # the given value mean is used as is
    vm = torch.zeros(B, Hkv, d)
    y0 = sparq_attention(q, K, V, r=r, k=k, local_window=l, reallocate=realloc, K_t=kt, v_mean=vm, impl="cpu")
    ref0 = sparq_attention(*f64(q, K, V), r=r, k=k, local_window=l, reallocate=realloc, v_mean=vm.double())
    torch.testing.assert_close(y0.double(), ref0, rtol=0, atol=2e-5)


@pytest.mark.parametrize("Hq,Hkv", [(4, 4), (4, 2)])
def test_sparq_cpu_full_settings_equal_dense(Hq, Hkv):
    q, K, V, Kt = make(1, Hq, Hkv, 100, 32, seed=11)
    y = sparq_attention(q, K, V, r=32, k=100, K_t=Kt, impl="cpu")
    torch.testing.assert_close(y.double(), dense_attention(*f64(q, K, V)), rtol=0, atol=2e-5)


def test_local_window_positions_always_used_cpu():
    q, K, V, Kt = make(1, 2, 2, 64, 16, seed=5)
    K[:, :, -6:, :] = -20 * torch.sign(q[:, :, None, :])      # the window would never be chosen by score
    Kt = K.transpose(-1, -2).contiguous()
    y = sparq_attention(q, K, V, r=8, k=6, local_window=6, reallocate=False, K_t=Kt, impl="cpu")
    torch.testing.assert_close(y, dense_attention(q, K[:, :, -6:], V[:, :, -6:]), rtol=0, atol=2e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16bit_storage(dtype):
    q, K, V, Kt = make(1, 4, 2, 256, 64, seed=2)
    q, K, V, Kt = (3 * q).to(dtype), (3 * K).to(dtype), (3 * V).to(dtype), (3 * Kt).to(dtype)
    y = sparq_attention(q, K, V, r=8, k=32, K_t=Kt, impl="cpu")
    assert y.dtype == dtype and torch.isfinite(y).all()
    ref = sparq_attention(*f64(q, K, V), r=8, k=32, K_t=Kt.double())
    # the result is rounded to the 16-bit dtype: compare relative to its precision
    torch.testing.assert_close(y.double(), ref, rtol=1e-2, atol=1e-2)
    yd = dense_attention(q, K, V, impl="cpu")
    assert torch.isfinite(yd).all()
    torch.testing.assert_close(yd.double(), dense_attention(*f64(q, K, V)), rtol=1e-2, atol=1e-2)


def test_cpu_rejects_bad_arguments():
    q, K, V, Kt = make(1, 2, 2, 32, 16, seed=0)
    for kw in (dict(r=17, k=4), dict(r=4, k=33), dict(r=4, k=4, local_window=5)):
        with pytest.raises(ValueError):
            sparq_attention(q, K, V, impl="cpu", **kw)
