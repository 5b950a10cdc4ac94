"""The ideal implementation: fused kernels that move exactly the bytes of the method's traffic formulas (docs/method.md).

Dense attention is one fused kernel per layer streaming K and V once. SparQ is two fused
kernels per layer: step 1 (approximate scores over K_t, softmax statistics and top-k selection
in one pass, scores never written to memory) and step 2 (gathers of k rows of K and V fused
into the dot products, softmax, reallocation). Only the attention launches are counted as
fixed costs; the rest of the step is its weight traffic and arithmetic.
"""

from __future__ import annotations

from sparq_sim.implementations import base
from sparq_sim.traffic import Phase
from sparq_sim.workload import Workload

SCORE_OPS = base.SCORE_OPS


class Ideal:
    name = "ideal"
    description = "traffic-bound fused kernels moving exactly the traffic formulas' bytes (docs/method.md; default)"

    def attention_phases(self, w: Workload, method: str, device=None) -> list[Phase]:
        s = base.Shape.of(w)
        layers = w.model.layers
        if method == "dense":
            return [
                Phase("scores", (base.read_q(s), base.stream_all(s, "K")),
                      flops=(2 * s.head_dim + SCORE_OPS) * s.seq * s.q_instances, launches=layers),
                Phase("values", (base.stream_all(s, "V"), base.write_out(s)),
                      flops=2.0 * s.head_dim * s.seq * s.q_instances),
                base.cache_append(s, "once"),
            ]
        if method != "sparq":
            raise ValueError(f"unknown method {method!r}")
        values = [base.gather_rows(s, "V"), base.write_out(s)]
        if w.reallocate:
            values.extend(base.value_mean(s))
        return [
            Phase("step1", (base.read_q(s), base.step1_keys(s, w.store_k)),
                  flops=(2 * s.r + SCORE_OPS) * s.seq * s.q_instances, launches=layers),
            Phase("step2_keys", (base.gather_rows(s, "K"),),
                  flops=(2 * s.head_dim + SCORE_OPS) * s.k * s.q_instances, launches=layers),
            Phase("step2_values", tuple(values), flops=2.0 * s.head_dim * s.k * s.q_instances),
            base.cache_append(s, w.store_k),
        ]

    def other_phases(self, w: Workload, device=None) -> list[Phase]:
        return [base.weights_phase(w)]


IMPLEMENTATION = Ideal()
