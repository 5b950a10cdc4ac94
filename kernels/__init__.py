"""SparQ Attention and dense attention kernels: reference, fast CPU, Triton GPU, published replicas.

    from sparq_sim.kernels import dense_attention, sparq_attention
    y = sparq_attention(q, K, V, r=16, k=2048, K_t=K_t, impl="cpu")

Shapes: q (B, Hq, d_h); K, V (B, Hkv, S, d_h), Hq a multiple of Hkv (GQA when larger);
K_t (B, Hkv, d_h, S) the component-major copy of K (``None``: K is stored once and step 1 reads
r columns of position-major K); v_mean (B, Hkv, d_h), the mean of V over positions (computed
when ``None``). The result is (B, Hq, d_h) in q's dtype.

``impl`` names (``registry`` maps each to its function, imported on its first call)
-------------------------------------------------------------------------------------
reference         readable PyTorch, any device; the algorithm of docs/method.md exactly (local window,
                  GQA index sharing, per-head tau and alpha, reallocation switch). float64
                  arithmetic for float64 inputs, float32 otherwise. Dense and SparQ.
cpu               fast multi-threaded numba kernels (``cpu_dense``, ``cpu_sparq``), float32 arithmetic,
                  KV stored as float32, float16 or bfloat16 (converted on load); compiled once per
                  machine and cached. CPU tensors only. Dense and SparQ.
triton            Triton GPU kernels (``triton_*``): SparQ in three launches (step 1 with
                  per-block softmax statistics; exact top-k, alpha and window in one program per
                  KV head; gathers fused into the step-2 dot products with online softmax and
                  reallocation); dense in one launch. Runs on CPU tensors under TRITON_INTERPRET=1.
torch-eager       replicas of the published eager kernels: dense = attn-torch (matmul, softmax,
                  matmul); SparQ = sparq-attn-torch (gathers into new tensors, then matmuls), or
                  its K-once form sparq-attn-torch-oneK when K_t is None.
torch-eager-onek  SparQ only: sparq-attn-torch-oneK even when K_t is given.
torch-sdpa        dense only: torch's scaled_dot_product_attention (published attn-nn).

In a decode loop, keep K_t and the running v_mean as state instead of passing ``v_mean=None``
(a full pass over V each call): ``from sparq_sim.kernels.decoding import SparqDecoder`` keeps K,
V, K_t and v_mean up to date per appended token and calls the kernel on them (``dec.step(q, key,
value)``).

Also here: ``timing`` (time_call, TimingResult, measure_stream_bandwidth: the harness the
validation suite reuses), ``profiling`` (one workload timed with bytes and GB/s, behind
``sparq-sim profile``), ``bench_cpu`` and ``bench_triton`` (benchmark scripts, results in
BENCHMARKS.md).

Bad arguments (unknown impl, wrong shapes, r > d_h, k > S, local_window > k) raise ValueError
(``sparq_sim.errors.UserError``).
"""

from __future__ import annotations

from sparq_sim.kernels._checks import check_dense, check_sparq
from sparq_sim.kernels.registry import DENSE_IMPLS, DENSE_KERNELS, SPARQ_IMPLS, SPARQ_KERNELS, Kernel

__all__ = ["dense_attention", "sparq_attention", "DENSE_IMPLS", "SPARQ_IMPLS", "Kernel"]


def dense_attention(q, K, V, *, impl="reference"):
    """softmax(q . K^T / sqrt(d_h)) . V for one decoding step; see the module docstring."""
    check_dense(q, K, V, impl)
    return DENSE_KERNELS.get(impl)(q, K, V)


def sparq_attention(q, K, V, *, r, k, local_window=0, reallocate=True, v_mean=None, K_t=None,
                    impl="reference"):
    """SparQ Attention for one decoding step (docs/method.md's algorithm); see the module docstring."""
    check_sparq(q, K, V, r, k, local_window, v_mean, K_t, impl)
    return SPARQ_KERNELS.get(impl)(q, K, V, r=r, k=k, local_window=local_window, reallocate=bool(reallocate),
                                   v_mean=v_mean, K_t=K_t)
