"""H2O, heavy-hitter oracle (Zhang et al., NeurIPS 2023, arXiv 2306.14048; FMInference/H2O): the
cache keeps a budget of k = heavy + recent positions (the positions with the largest accumulated
attention, and the most recent ones); the rest are evicted for good.

Traffic per batch element and layer, elements: Hkv * (2*k*d_h + 2*S) + Hq * 2*d_h, the formula
the SparQ paper (arXiv 2312.04985) gives: the retained K and V rows (stored compacted, so read as
one run), and a read and a write of the accumulated score of each of the S positions seen, which
choose the next eviction. Score accumulators are counted at the KV element size, as the formula
does. With GQA the cache is shared, so eviction (and the accumulators) is per KV head.
Memory per sequence: the retained cache and the accumulators, layers*Hkv*(2*k*d_h + S)*bytes,
less than dense (negative extra memory).
Compression C: 2*k*d_h + 2*S = C*2*S*d_h, so k = S*(C - 1/d_h), split evenly between heavy
hitters and recent positions (the paper's even split).
"""

from __future__ import annotations

from sparq_sim.errors import UserError
from sparq_sim.implementations import base as ib
from sparq_sim.methods.base import Knob, MethodName, per_step, positive_int, unknown_knobs
from sparq_sim.traffic import STREAM, Access, Phase

SCORE_OPS = 5


class H2O:
    name = MethodName.H2O.value
    description = "evicts all but k heavy-hitter and recent positions (lossy for good)"
    source = "Zhang et al., H2O, NeurIPS 2023, arXiv 2306.14048"
    knobs = (
        Knob("heavy", "heavy-hitter positions kept", "S/10", "arXiv 2306.14048: 20% cache budget, half heavy hitters"),
        Knob("recent", "most recent positions kept", "S/10", "arXiv 2306.14048: 20% cache budget, half recent"),
    )
    keeps_whole_cache = False

    def default_settings(self, model, seq) -> dict:
        return self.check(model, seq, {"heavy": max(1, seq // 10), "recent": max(1, seq // 10)})

    def settings_for_compression(self, model, seq, compression) -> dict:
        budget = round(seq * (compression - 1 / model.head_dim))
        if budget < 2:
            raise UserError(f"h2o's score accumulators alone move 1/d_h = 1/{model.head_dim} of dense "
                            f"attention's traffic: it cannot reach compression {compression:.4g}")
        budget = min(budget, seq)
        return self.check(model, seq, {"heavy": budget - budget // 2, "recent": budget // 2})

    def check(self, model, seq, settings) -> dict:
        unknown_knobs(self, settings)
        heavy = positive_int(settings, "heavy", 0, seq, self.name) if "heavy" in settings else max(1, seq // 10)
        recent = positive_int(settings, "recent", 0, seq, self.name) if "recent" in settings else max(1, seq // 10)
        if heavy + recent < 1 or heavy + recent > seq:
            raise UserError(f"h2o: heavy + recent = {heavy + recent} must be between 1 and S = {seq}")
        return {"heavy": heavy, "recent": recent}

    @staticmethod
    def budget(s: dict) -> int:
        return s["heavy"] + s["recent"]

    def ideal_bytes(self, w, s) -> int:
        d, k = w.model.head_dim, self.budget(s)
        return per_step(w, 2 * k * d + 2 * w.seq, 2 * d) * w.kv_bytes

    def attention_phases(self, w, s):
        sh = ib.Shape.of(w)
        k = self.budget(s)
        acc = sh.seq * sh.elem
        return [
            Phase("attend", (ib.read_q(sh), Access(STREAM, sh.kv_instances, k * sh.row, what="K (kept)"),
                             Access(STREAM, sh.kv_instances, k * sh.row, what="V (kept)"), ib.write_out(sh)),
                  flops=(4 * sh.head_dim + SCORE_OPS) * k * sh.q_instances, launches=w.model.layers),
            Phase("scores_update", (Access(STREAM, sh.kv_instances, acc, what="accumulated scores"),
                                    Access(STREAM, sh.kv_instances, acc, write=True, what="accumulated scores")),
                  flops=2.0 * sh.seq * sh.kv_instances, launches=w.model.layers),
            ib.cache_append(sh, "once"),
        ]

    def kv_bytes_per_sequence(self, model, seq, kv_dtype, s) -> int:
        from sparq_sim import dtypes
        return model.layers * model.kv_heads * (2 * self.budget(s) * model.head_dim + seq) * dtypes.nbytes(kv_dtype)

    def fixed_bytes(self, model, kv_dtype, s) -> int:
        return 0


METHOD = H2O()
