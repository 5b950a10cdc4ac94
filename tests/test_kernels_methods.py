"""Reference kernels of the methods beside SparQ: each equals dense attention when it keeps
everything (float64), and the elements each one reads and writes equal its method's traffic
formula (sparq_sim.methods) on a GQA shape. K_t quantized to int8/int4: same top-k where the
margin allows, and how often it differs on random data."""

import pytest
import torch

from sparq_sim.kernels import methods_reference as mr
from sparq_sim.kernels.reference import sparq_attention as sparq_reference
from sparq_sim.methods import get_method
from sparq_sim.models import ModelConfig
from sparq_sim.workload import Workload

B, HQ, HKV, S, D = 2, 8, 2, 256, 16          # GQA: groups of 4 query heads per KV head
MODEL = ModelConfig("tiny-gqa", layers=1, heads=HQ, kv_heads=HKV, head_dim=D, d_model=HQ * D, params=1e6)
W = Workload(model=MODEL, seq=S, batch=B)   # fp16 KV: ideal bytes / 2 = elements


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, HQ, D, generator=g, dtype=torch.float64)
    K = torch.randn(B, HKV, S, D, generator=g, dtype=torch.float64)
    V = torch.randn(B, HKV, S, D, generator=g, dtype=torch.float64)
    return q, K, V


def formula_elements(name, settings):
    m = get_method(name)
    return m.ideal_bytes(W, m.check(MODEL, S, settings)) // 2


def dense_of(q, K, V):
    return mr.dense_attention(q, K, V)


def test_dense_count_and_value():
    q, K, V = inputs()
    reads = mr.Reads()
    y = mr.dense_attention(q, K, V, reads)
    assert reads.total == formula_elements("dense", {}) == B * (HKV * 2 * S * D + HQ * 2 * D)
    from sparq_sim.kernels.reference import dense_attention
    assert torch.allclose(y, dense_attention(q, K, V))


def test_flexgen_count_and_full_selection_is_dense():
    q, K, V = inputs()
    reads = mr.Reads()
    mr.flexgen_attention(q, K, V, k=32, reads=reads)
    assert reads.total == formula_elements("flexgen", {"k": 32})
    assert torch.allclose(mr.flexgen_attention(q, K, V, k=S), dense_of(q, K, V))


def test_streaming_count_and_full_window_is_dense():
    q, K, V = inputs()
    reads = mr.Reads()
    mr.streaming_attention(q, K, V, n_sink=4, window=60, reads=reads)
    assert reads.total == formula_elements("streamingllm", {"n_sink": 4, "window": 60})
    assert torch.allclose(mr.streaming_attention(q, K, V, n_sink=4, window=S - 4), dense_of(q, K, V))


def test_h2o_count_eviction_and_nothing_evicted_is_dense():
    q, K, V = inputs()
    heavy, recent = 24, 8
    scores = torch.rand(B, HKV, S, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    keep = mr.h2o_evict(scores, recent=recent, heavy=heavy)
    assert keep.sum(-1).eq(heavy + recent).all() and keep[..., S - recent:].all()
    scores = scores.masked_fill(~keep, float("-inf"))
    rows = keep.nonzero()[:, 2].reshape(B, HKV, heavy + recent)
    K_kept = K.gather(2, rows[..., None].expand(-1, -1, -1, D))
    V_kept = V.gather(2, rows[..., None].expand(-1, -1, -1, D))
    reads = mr.Reads()
    y, new = mr.h2o_attention(q, K_kept, V_kept, scores, reads)
    assert reads.total == formula_elements("h2o", {"heavy": heavy, "recent": recent})
    # accumulated scores grow by this step's group-summed probabilities (G heads: sum G), evicted stay -inf
    assert torch.isinf(new[~keep]).all()
    assert torch.allclose((new - scores)[keep].reshape(B, HKV, -1).sum(-1), torch.full((B, HKV), HQ / HKV,
                                                                                       dtype=torch.float64))
    y_all, _ = mr.h2o_attention(q, K, V, torch.zeros(B, HKV, S, dtype=torch.float64))
    assert torch.allclose(y_all, dense_of(q, K, V))


def test_quest_count_bounds_and_full_budget_is_dense():
    q, K, V = inputs()
    lo, hi = mr.quest_metadata(K, 16)
    reads = mr.Reads()
    mr.quest_attention(q, K, V, lo, hi, page=16, budget=64, reads=reads)
    assert reads.total == formula_elements("quest", {"page": 16, "budget": 64})
    # the bound is an upper bound of every score in the page
    true = (q.reshape(B, HKV, HQ // HKV, 1, D) @ K.transpose(-1, -2)[:, :, None]).squeeze(-2)   # (B,Hkv,G,S)
    bound = torch.maximum(q.reshape(B, HKV, -1, 1, D) * lo[:, :, None], q.reshape(B, HKV, -1, 1, D) * hi[:, :, None]).sum(-1)
    assert (bound.repeat_interleave(16, dim=-1) >= true - 1e-12).all()
    assert torch.allclose(mr.quest_attention(q, K, V, lo, hi, page=16, budget=S), dense_of(q, K, V))


def test_double_sparsity_count_and_full_selection_is_dense():
    q, K, V = inputs()
    r = 4
    channels = torch.stack([torch.randperm(D, generator=torch.Generator().manual_seed(h))[:r] for h in range(HKV)])
    labels = mr.double_sparsity_labels(K, channels)
    reads = mr.Reads()
    mr.double_sparsity_attention(q, K, V, labels, channels, k=32, reads=reads)
    # the formula leaves out the offline channel table: r numbers per KV head (a d_h-sized term)
    assert reads.total - reads.read["channels"] == formula_elements("double-sparsity", {"r": r, "k": 32})
    assert reads.read["channels"] == HKV * r
    assert torch.allclose(mr.double_sparsity_attention(q, K, V, labels, channels, k=S), dense_of(q, K, V))


def test_loki_count_and_full_rank_is_dense():
    q, K, V = inputs()
    basis = mr.loki_basis(K)
    assert torch.allclose(basis.transpose(-1, -2) @ basis, torch.eye(D, dtype=torch.float64).expand(HKV, D, D))
    K_rot = K @ basis[None]
    reads = mr.Reads()
    mr.loki_attention(q, K_rot, V, basis, r=4, k=32, reads=reads)
    assert reads.total == formula_elements("loki", {"r": 4, "k": 32})
    assert torch.allclose(mr.loki_attention(q, K_rot, V, basis, r=D, k=S), dense_of(q, K, V))


def test_sparq_counted_equals_reference_and_formula():
    q, K, V = inputs()
    K_t = K.transpose(-1, -2).contiguous()
    v_mean = V.mean(dim=2)
    reads = mr.Reads()
    y, _ = mr.sparq_attention(q, K, V, K_t, v_mean, r=4, k=32, reads=reads)
    assert torch.allclose(y, sparq_reference(q, K, V, r=4, k=32, v_mean=v_mean, K_t=K_t))
    assert reads.total == formula_elements("sparq", {"r": 4, "k": 32})
