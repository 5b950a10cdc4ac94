"""Reference kernels, published replicas and argument checks (float64 ground truth, fresh random inputs)."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sparq_sim.kernels import dense_attention, sparq_attention  # noqa: E402
from sparq_sim.kernels import reference  # noqa: E402


def make(B=2, Hq=4, Hkv=2, S=96, d=16, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Hq, d, generator=g, dtype=dtype)
    K = torch.randn(B, Hkv, S, d, generator=g, dtype=dtype)
    V = torch.randn(B, Hkv, S, d, generator=g, dtype=dtype)
    return q, K, V, K.transpose(-1, -2).contiguous()


def loop_sparq(q, K, V, r, k, l, reallocate):
    """docs/method.md's algorithm with its GQA rules, written as plain numpy loops (independent of reference.py)."""
    q, K, V = (t.double().numpy() for t in (q, K, V))
    B, Hq, d = q.shape
    Hkv, S = K.shape[1], K.shape[2]
    G = Hq // Hkv
    out = np.zeros((B, Hq, d))
    for b in range(B):
        for h in range(Hkv):
            qs = q[b, h * G:(h + 1) * G]
            i1 = np.argsort(-np.abs(qs).sum(0), kind="stable")[:r]
            s_hat = []
            for g in range(G):
                tau = math.sqrt(d * np.abs(qs[g, i1]).sum() / np.abs(qs[g]).sum())
                x = K[b, h][:, i1] @ qs[g, i1] / tau
                e = np.exp(x - x.max())
                s_hat.append(e / e.sum())
            rank = np.sum(s_hat, axis=0)
            others = np.argsort(-rank[:S - l], kind="stable")[:k - l]
            i2 = np.concatenate([others, np.arange(S - l, S)])
            vbar = V[b, h].mean(0)
            for g in range(G):
                sc = K[b, h][i2] @ qs[g] / math.sqrt(d)
                p = np.exp(sc - sc.max())
                y = (p / p.sum()) @ V[b, h][i2]
                if reallocate:
                    a = s_hat[g][i2].sum()
                    y = a * y + (1 - a) * vbar
                out[b, h * G + g] = y
    return torch.from_numpy(out)


@pytest.mark.parametrize("Hq,Hkv", [(4, 4), (4, 2), (6, 1)])
def test_full_settings_equal_dense(Hq, Hkv):
    q, K, V, Kt = make(Hq=Hq, Hkv=Hkv)
    S, d = K.shape[2], K.shape[3]
    dense = dense_attention(q, K, V)
    for kt in (None, Kt):
        y = sparq_attention(q, K, V, r=d, k=S, K_t=kt)
        torch.testing.assert_close(y, dense, rtol=0, atol=1e-12)


@pytest.mark.parametrize("Hq,Hkv,l,realloc", [(4, 4, 0, True), (4, 2, 0, True), (4, 2, 5, False), (6, 1, 3, True)])
def test_reference_matches_loops(Hq, Hkv, l, realloc):
    q, K, V, Kt = make(Hq=Hq, Hkv=Hkv, seed=Hq + l)
    y = sparq_attention(q, K, V, r=5, k=20, local_window=l, reallocate=realloc, K_t=Kt)
    torch.testing.assert_close(y, loop_sparq(q, K, V, 5, 20, l, realloc), rtol=0, atol=1e-12)


def test_gqa_shares_indices_per_kv_head():
    q, K, V, _ = make(B=2, Hq=6, Hkv=2, S=80, d=16, seed=3)
    i1, tau, s_hat, i2, alpha = reference.sparq_selection(q, K, r=4, k=12)
    assert i1.shape == (2, 2, 4) and i2.shape == (2, 2, 12)          # one set per (batch, KV head)
    assert tau.shape == alpha.shape == (2, 2, 3)                      # per query head
    absq = q.abs().reshape(2, 2, 3, 16).sum(2)
    for b in range(2):
        for h in range(2):
            assert set(i1[b, h].tolist()) == set(torch.topk(absq[b, h], 4).indices.tolist())
            rank = s_hat[b, h].sum(0)
            assert set(i2[b, h].tolist()) == set(torch.topk(rank, 12).indices.tolist())
            for g in range(3):  # alpha stays per head over the shared positions
                assert torch.isclose(alpha[b, h, g], s_hat[b, h, g, i2[b, h]].sum())
    # batch elements never share: a different q in batch 1 changes only batch 1's choice
    q2 = q.clone()
    q2[1] = torch.randn(6, 16, dtype=q.dtype)
    _, _, _, i2b, _ = reference.sparq_selection(q2, K, r=4, k=12)
    assert torch.equal(i2b[0], i2[0])


def test_local_window_always_selected():
    q, K, V, _ = make(B=1, Hq=2, Hkv=2, S=64, d=16, seed=5)
    l = 6
    # make the last positions score as low as possible
    K[:, :, -l:, :] = -20 * torch.sign(q[:, :, None, :])
    _, _, s_hat, i2, _ = reference.sparq_selection(q, K, r=8, k=10, local_window=l)
    for h in range(2):
        assert set(range(64 - l, 64)) <= set(i2[0, h].tolist())
        assert s_hat[0, h, 0, -l:].max() < s_hat[0, h, 0, :-l].min()       # they would not be chosen otherwise
    # k == l: only the window is used
    y = sparq_attention(q, K, V, r=8, k=l, local_window=l, reallocate=False)
    torch.testing.assert_close(y, dense_attention(q, K[:, :, -l:], V[:, :, -l:]))


@pytest.mark.parametrize("impl", ["torch-eager", "torch-eager-onek"])
@pytest.mark.parametrize("Hq,Hkv,l,realloc", [(4, 4, 0, True), (4, 2, 3, True), (6, 1, 0, False)])
def test_published_replicas_agree(impl, Hq, Hkv, l, realloc):
    q, K, V, Kt = make(Hq=Hq, Hkv=Hkv, seed=7)
    ref = sparq_attention(q, K, V, r=6, k=24, local_window=l, reallocate=realloc, K_t=Kt)
    for kt in (Kt, None):
        y = sparq_attention(q, K, V, r=6, k=24, local_window=l, reallocate=realloc, K_t=kt, impl=impl)
        torch.testing.assert_close(y, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", ["torch-eager", "torch-sdpa"])
def test_dense_replicas_agree(impl):
    q, K, V, _ = make(Hq=4, Hkv=2)
    torch.testing.assert_close(dense_attention(q, K, V, impl=impl), dense_attention(q, K, V), rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", ["reference", "torch-eager"])
def test_fp16_finite(impl):
    q, K, V, Kt = make(Hq=4, Hkv=2, S=128, d=64, dtype=torch.float32)
    q, K, V, Kt = (3 * q).half(), (3 * K).half(), (3 * V).half(), (3 * Kt).half()
    y = sparq_attention(q, K, V, r=8, k=16, K_t=Kt, impl=impl)
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
    assert torch.isfinite(dense_attention(q, K, V, impl=impl)).all()


def test_bad_arguments_raise_value_error():
    q, K, V, Kt = make()
    S, d = K.shape[2], K.shape[3]
    bad = [
        dict(impl="nope"), dict(r=d + 1), dict(r=0), dict(k=S + 1), dict(k=0),
        dict(local_window=9, k=8), dict(local_window=-1), dict(K_t=K), dict(v_mean=V),
        dict(r=2.5),
    ]
    for extra in bad:
        kw = dict(r=4, k=8)
        kw.update(extra)
        with pytest.raises(ValueError):
            sparq_attention(q, K, V, **kw)
    with pytest.raises(ValueError):
        sparq_attention(q[:, :3], K, V, r=4, k=8)        # Hq not a multiple of Hkv
    with pytest.raises(ValueError):
        sparq_attention(q, K, V[:, :, :-1], r=4, k=8)    # K, V shapes differ
    with pytest.raises(ValueError):
        sparq_attention(q[..., :-1], K, V, r=4, k=8)     # d_h differs
    with pytest.raises(ValueError):
        sparq_attention(q[0], K, V, r=4, k=8)            # q not 3-D
    with pytest.raises(ValueError):
        dense_attention(q, K, V, impl="torch-eager-onek")
    with pytest.raises(ValueError, match="unknown impl"):
        dense_attention(q, K, V, impl="cuda")
