"""FlexGen's top-k sparse attention on V (Sheng et al., ICML 2023, arXiv 2303.06865): exact scores
over all of K, then only the k highest-scoring rows of V.

Traffic per batch element and layer, elements: Hkv * (S*d_h + k*d_h) + Hq * 2*d_h (the formula the
SparQ paper, arXiv 2312.04985, gives for it). Memory: as dense (nothing is stored besides K, V).
Compression C: k = S*(2C - 1), since all of K (half of dense) is read whatever k is; FlexGen
cannot go below 1/2 of dense attention traffic.
"""

from __future__ import annotations

from sparq_sim.errors import UserError
from sparq_sim.implementations import base as ib
from sparq_sim.methods.base import Knob, MethodBase, MethodName, clamp, per_step
from sparq_sim.registry import StoreK
from sparq_sim.traffic import Phase


class FlexGen(MethodBase):
    name = MethodName.FLEXGEN.value
    description = "exact scores over all K, then the k best rows of V"
    source = "Sheng et al., FlexGen, ICML 2023, arXiv 2303.06865"
    knobs = (Knob("k", "rows of V read", "S/16", "assumed: the SparQ paper's k = S/16 at 1/8"),)
    keeps_whole_cache = True

    def settings_for_compression(self, model, seq, compression) -> dict:
        if compression < 0.5:
            raise UserError(f"flexgen reads all of K, half of dense attention's traffic: it cannot reach "
                            f"compression {compression:.4g} (below 1/2)")
        return self.check(model, seq, {"k": clamp(seq * (2 * compression - 1), 1, seq)})

    def settings_from(self, model, seq, given) -> dict:
        return {"k": self.integer(given, "k", 1, seq, max(1, seq // 16))}

    def ideal_bytes(self, w, s) -> int:
        d = w.model.head_dim
        return per_step(w, w.seq * d + s["k"] * d, 2 * d) * w.kv_bytes

    def attention_phases(self, w, s):
        sh = ib.Shape.of(w)
        k = s["k"]
        return [
            Phase("scores", (ib.read_q(sh), ib.stream_all(sh, "K")),
                  flops=(2 * sh.head_dim + ib.SCORE_OPS) * sh.seq * sh.q_instances, launches=w.model.layers),
            Phase("top_v", (ib.gather_rows(sh, "V", rows=k), ib.write_out(sh)),
                  flops=2.0 * sh.head_dim * k * sh.q_instances, launches=w.model.layers),
            ib.cache_append(sh, StoreK.ONCE),
        ]


METHOD = FlexGen()
