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
from sparq_sim.methods.base import KeptPositions, Knob, MethodName
from sparq_sim.traffic import Access, Pattern, Phase


class H2O(KeptPositions):
    name = MethodName.H2O.value
    description = "evicts all but k heavy-hitter and recent positions (lossy for good)"
    source = "Zhang et al., H2O, NeurIPS 2023, arXiv 2306.14048"
    knobs = (
        Knob("heavy", "heavy-hitter positions kept", "S/10", "arXiv 2306.14048: 20% cache budget, half heavy hitters"),
        Knob("recent", "most recent positions kept", "S/10", "arXiv 2306.14048: 20% cache budget, half recent"),
    )
    parts = ("heavy", "recent")
    kept_label = "kept"
    per_position = 1          # the accumulated attention score of every position seen

    def part_default(self, knob, seq, chosen) -> int:
        return max(1, seq // 10)

    def settings_for_compression(self, model, seq, compression) -> dict:
        budget = round(seq * (compression - 1 / model.head_dim))
        if budget < 2:
            raise UserError(f"h2o's score accumulators alone move 1/d_h = 1/{model.head_dim} of dense "
                            f"attention's traffic: it cannot reach compression {compression:.4g}")
        budget = min(budget, seq)
        return self.check(model, seq, {"heavy": budget - budget // 2, "recent": budget // 2})

    def per_position_phases(self, sh, w) -> list[Phase]:
        """Read and write back the accumulated scores, which choose the next eviction."""
        acc = sh.seq * sh.elem
        scores = (Access(Pattern.STREAM, sh.kv_instances, acc, what="accumulated scores"),
                  Access(Pattern.STREAM, sh.kv_instances, acc, write=True, what="accumulated scores"))
        return [Phase("scores_update", scores, flops=2.0 * sh.seq * sh.kv_instances, launches=w.model.layers)]


METHOD = H2O()
