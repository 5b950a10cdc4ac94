"""SparqDecoder: the decoding-state API against the float64 reference over 50 appended tokens."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sparq_sim.errors import UserError  # noqa: E402
from sparq_sim.kernels import reference  # noqa: E402
from sparq_sim.kernels.decoding import SparqDecoder  # noqa: E402

B, HQ, HKV, D, R, K_KEEP, STEPS = 2, 4, 2, 32, 8, 12, 50


def tokens(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [tuple(torch.randn(*shape, generator=g, dtype=torch.float64) for shape in
                  ((B, HQ, D), (B, HKV, D), (B, HKV, D))) for _ in range(STEPS)]


def reference_step(qs, keys, values, n, local_window):
    """Float64 reference over the first n tokens, K_t and the mean of V computed from scratch."""
    K = torch.stack(keys[:n], dim=2)
    V = torch.stack(values[:n], dim=2)
    k = min(K_KEEP, n)
    return reference.sparq_attention(qs[n - 1], K, V, r=R, k=k, local_window=min(local_window, k),
                                     K_t=K.transpose(-1, -2).contiguous())


@pytest.mark.parametrize("impl,dtype,tol", [("reference", torch.float64, 1e-12), ("cpu", torch.float32, 2e-5)])
@pytest.mark.parametrize("local_window", [0, 4])
def test_decoder_matches_float64_reference_over_50_tokens(impl, dtype, tol, local_window):
    if impl == "cpu":
        pytest.importorskip("numba")
    seq = tokens()
    qs, keys, values = map(list, zip(*seq))
    dec = SparqDecoder(B, HKV, D, r=R, k=K_KEEP, local_window=local_window, capacity=8, dtype=dtype, impl=impl)
    for n, (q, key, value) in enumerate(seq, start=1):
        y = dec.step(q.to(dtype), key.to(dtype), value.to(dtype))
        want = reference_step(qs, keys, values, n, local_window)
        assert y.dtype == dtype and y.shape == (B, HQ, D)
        assert torch.allclose(y.double(), want, atol=tol, rtol=tol), (n, (y.double() - want).abs().max())
    assert dec.length == STEPS and dec.capacity == 64   # grew 8 -> 16 -> 32 -> 64
    # the state itself: K, K_t and the running mean equal what a full pass would give
    K = torch.stack(keys, dim=2).to(dtype)
    assert torch.equal(dec.K, K) and torch.equal(dec.K_t, K.transpose(-1, -2))
    assert torch.allclose(dec.v_mean.double(), torch.stack(values, dim=2).mean(dim=2), atol=1e-6)


def test_cpu_kernel_reads_the_cache_in_place():
    """The views of the first n positions reach the kernel without a copy (no pass over K, V, K_t)."""
    from sparq_sim.kernels.cpu_api import kv_array
    dec = SparqDecoder(1, 2, 16, r=4, k=4, capacity=32)
    for key, value in ((torch.randn(1, 2, 16), torch.randn(1, 2, 16)) for _ in range(10)):
        dec.append(key, value)
    assert not dec.K_t.is_contiguous() and not dec.K.is_contiguous()
    for view, buffer in ((dec.K, dec._K), (dec.V, dec._V), (dec.K_t, dec._K_t)):
        assert np.shares_memory(kv_array(view, "x"), buffer.numpy())


def test_decoder_bad_input():
    with pytest.raises(UserError, match="r <= head_dim"):
        SparqDecoder(1, 2, 16, r=17, k=4)
    dec = SparqDecoder(1, 2, 16, r=4, k=4, impl="reference")
    with pytest.raises(UserError, match="at least one appended position"):
        dec.attend(torch.randn(1, 2, 16))
    with pytest.raises(UserError, match="append takes key and value of shape"):
        dec.append(torch.randn(1, 3, 16), torch.randn(1, 3, 16))
