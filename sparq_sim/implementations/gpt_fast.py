"""gpt-fast style decoding on one GPU: PyTorch compiled with torch.compile, replayed as a CUDA graph.

What is modelled (every constant below is an assumption, basis "assumed", unless said otherwise):

* The whole decoding step is one CUDA graph, so there is no host launch cost; each kernel still
  costs ``GRAPH_KERNEL_S`` on the GPU (gap between graph nodes plus ramp-up and tail of a
  small kernel). ``launches`` is therefore 0 and the kernel cost goes into ``fixed_s``.
* Weights: the per-layer kernels of gpt-fast's model under inductor (RMSNorm, fused QKV
  projection, RoPE with the cache write, output projection with the residual, RMSNorm, w1, w3,
  SiLU-multiply, w2 with the residual), every weight read once per step.
* gpt-fast sets ``torch._inductor.config.coordinate_descent_tuning``, under which inductor
  decomposes a batched matmul with a single query row (every decoding attention matmul) into a
  multiply-and-sum reduction it generates itself. Index (gather) and expand operations feeding
  such a reduction are fused into it, so gathered rows are read straight from the cache and no
  gathered copy is written. (The A10G microbenchmark's "sparq-attn-compiled" did not use that
  setting; its matmuls went to cuBLAS with materialised gathers, hence its lower speedup.)
* Dense attention: gpt-fast forces the "math" scaled-dot-product attention while decoding so
  that inductor generates it: q.K^T (scores written), masked softmax (scores read
  ``SOFTMAX_READS`` times, probabilities written), probabilities.V. The KV cache is assumed sized
  to the sequence (gpt-fast reads its whole preallocated cache: size it to S). Under GQA the
  ``repeat_interleave`` of K and V is fused into the reductions and the query heads of a group,
  running together, share their KV reads in L2: KV is read once per KV head.
* SparQ attention (K stored twice, running value mean, as the SparQ paper's PyTorch code): top-r
  of |q| and tau; the r component-major runs of K_t read by the step-1 reduction (scores
  written); scaled softmax; top-k of the approximate scores with ``torch.topk`` (a radix select
  that reads the score row ``TOPK_PASSES`` times in ``TOPK_KERNELS`` kernels, indices written);
  k rows of K gathered by the step-2 reduction; softmax; k rows of V gathered by the value
  reduction; alpha and the lerp with the value mean; the running mean updated; the new key also
  written into the component-major copy. Under GQA the approximate scores of a group are summed
  (one more kernel) before the top-k.
* Index tensors are int64 (8 bytes per index).
* Scores and probabilities are kept in the KV dtype (inductor keeps the input dtype).
"""

from __future__ import annotations

from sparq_sim.errors import UserError
from sparq_sim.implementations import base
from sparq_sim.traffic import STREAM, Access, Phase
from sparq_sim.workload import Workload

GRAPH_KERNEL_S = 2.5e-6        # assumed: per-kernel cost inside a CUDA graph replay
WEIGHT_KERNELS_PER_LAYER = 9   # assumed: gpt-fast's layer under inductor (list in the docstring)
STEP_KERNELS = 4               # assumed: embedding, final norm, lm-head, sampling
SOFTMAX_READS = 2              # assumed: a softmax over a long row reads it twice (max and sum, then normalise)
APPEND_KERNELS = 1             # index_put of the new K and V (fused by inductor)
TOPK_PASSES = 5                # assumed: radix select over 16/32-bit keys plus the final selection pass
TOPK_KERNELS = 4               # assumed: kernels per torch.topk call on long rows
INDEX_BYTES = 8                # int64 indices
SCORE_OPS = 5                  # per score beyond the dot product (scale, max, exp, sum, compare)


def _kernels(n: int) -> float:
    return n * GRAPH_KERNEL_S


class GptFast:
    name = "gpt-fast"
    description = ("compiled PyTorch on one GPU (gpt-fast style): CUDA graph, gathers fused into "
                   "inductor reductions, torch.topk, K stored twice, running value mean")

    def _check(self, device):
        if device is not None and device.kind != "gpu":
            raise UserError(f"implementation gpt-fast models a GPU; {device.name} is a {device.kind} "
                            "(use --impl llama.cpp for CPUs)")

    def configure(self, **options) -> "GptFast":
        if options:
            raise UserError(f"implementation gpt-fast takes no options (got {', '.join(options)}); "
                            "--threads applies to CPU implementations")
        return self

    def attention_phases(self, w: Workload, method: str, device=None) -> list[Phase]:
        self._check(device)
        s = base.Shape.of(w)
        L, e = w.model.layers, s.elem
        nq = s.q_instances

        def rows(n: int, length: int, what: str, write: bool = False) -> Access:
            """n rows of `length` elements (scores, probabilities) per query or KV head."""
            return Access(STREAM, n, length * e, write=write, what=what)

        def softmax(name: str, n: int, length: int) -> Phase:
            return Phase(name, (rows(n * SOFTMAX_READS, length, "scores"), rows(n, length, "probs", True)),
                         flops=float(SCORE_OPS * length * n), fixed_s=_kernels(L))

        if method == "dense":
            return [
                Phase("scores", (base.read_q(s), base.stream_all(s, "K"), rows(nq, s.seq, "scores", True)),
                      flops=2.0 * s.head_dim * s.seq * nq, fixed_s=_kernels(L)),
                softmax("softmax", nq, s.seq),
                Phase("values", (rows(nq, s.seq, "probs"), base.stream_all(s, "V"), base.write_out(s)),
                      flops=2.0 * s.head_dim * s.seq * nq, fixed_s=_kernels(L)),
                Phase("kv_append", base.cache_append(s, "once").accesses,
                      fixed_s=_kernels(APPEND_KERNELS * L), in_formula=False),
            ]
        if method != "sparq":
            raise ValueError(f"unknown method {method!r}")
        g = w.model.group
        idx_k = Access(STREAM, s.kv_instances, s.k * INDEX_BYTES, what="i2")
        topk = [rows(s.kv_instances * TOPK_PASSES, s.seq, "s_hat (top-k passes)"),
                Access(STREAM, s.kv_instances, s.k * INDEX_BYTES, write=True, what="i2")]
        if g > 1:
            topk = [rows(nq, s.seq, "s_hat"), rows(s.kv_instances, s.seq, "s_hat group sum", True)] + topk
        values = [idx_k, base.gather_rows(s, "V"), rows(nq, s.k, "probs"), base.write_out(s)]
        if w.reallocate:
            values += [*base.value_mean(s), Access(STREAM, nq, s.row, what="out"),
                       Access(STREAM, nq, s.row, write=True, what="out (lerp)"),
                       Access(STREAM, s.kv_instances, s.row, what="new v (running mean)")]
        return [
            Phase("top_r", (base.read_q(s), Access(STREAM, s.kv_instances, s.r * INDEX_BYTES, write=True,
                                                   what="i1")),
                  flops=float(2 * s.head_dim * nq), fixed_s=_kernels(2 * L)),
            Phase("step1", (base.read_q(s), base.step1_keys(s, w.store_k), rows(nq, s.seq, "scores", True)),
                  flops=2.0 * s.r * s.seq * nq, fixed_s=_kernels(L)),
            softmax("step1_softmax", nq, s.seq),
            Phase("top_k", tuple(topk), flops=float(TOPK_PASSES * s.seq * s.kv_instances),
                  fixed_s=_kernels((TOPK_KERNELS + (1 if g > 1 else 0)) * L)),
            Phase("step2_keys", (base.read_q(s), idx_k, base.gather_rows(s, "K"), rows(nq, s.k, "scores", True)),
                  flops=2.0 * s.head_dim * s.k * nq, fixed_s=_kernels(L)),
            softmax("step2_softmax", nq, s.k),
            Phase("step2_values", tuple(values), flops=2.0 * s.head_dim * s.k * nq,
                  fixed_s=_kernels((3 if w.reallocate else 1) * L)),
            Phase("kv_append", base.cache_append(s, w.store_k).accesses,
                  fixed_s=_kernels((APPEND_KERNELS + (w.store_k == "twice")) * L), in_formula=False),
        ]

    def other_phases(self, w: Workload, device=None) -> list[Phase]:
        self._check(device)
        weights = base.weights_phase(w)
        layers = w.model.layers
        return [Phase(weights.name, weights.accesses, flops=weights.flops, flop_dtype=weights.flop_dtype,
                      fixed_s=_kernels(WEIGHT_KERNELS_PER_LAYER * layers + STEP_KERNELS), part="other")]


IMPLEMENTATION = GptFast()
