"""Loki, low-rank keys (Singhania et al., NeurIPS 2024, arXiv 2406.02542; hpcgroup/loki): keys
are stored rotated into a PCA basis computed offline per layer and head; each step projects q into
that basis, scores every position from the first r rotated dimensions (a contiguous prefix of each
key row), then reads the k best rows whole (exact scores: the rotation is orthogonal).

Traffic per batch element and layer, elements: Hkv * (S*r + 2*k*d_h) + Hq * 2*d_h, plus the
projections, d_h x d_h per layer and KV head, read once per step for the whole batch
(layers*Hkv*d_h^2 elements; under GQA one basis per KV head). The prefix of r elements of each
row is a gather of S pieces of r*bytes at a row's stride: free of waste when r*bytes fills whole
sectors, unlike SparQ's scattered components without K_t.
Memory: as dense per sequence (the rotated keys replace K); per model, the projections,
layers*Hkv*d_h^2*bytes.
Compression C: r = d_h*C, k = S*C/2 (as SparQ).
"""

from __future__ import annotations

from sparq_sim.implementations import base as ib
from sparq_sim.methods.base import Knob, MethodBase, MethodName, attend, chosen_rows, clamp, per_step
from sparq_sim.registry import StoreK
from sparq_sim.traffic import Access, Pattern, Phase


class Loki(MethodBase):
    name = MethodName.LOKI.value
    description = "first r PCA-rotated key dimensions (contiguous prefix), then the k best rows"
    source = "Singhania et al., Loki, NeurIPS 2024, arXiv 2406.02542"
    knobs = (
        Knob("r", "rank: leading PCA dimensions scored", "d_h/4", "arXiv 2406.02542: d_f = 0.25"),
        Knob("k", "positions read whole", "S/4", "arXiv 2406.02542: k_f = 0.25"),
    )
    keeps_whole_cache = True

    def settings_for_compression(self, model, seq, compression) -> dict:
        return self.check(model, seq, {"r": clamp(model.head_dim * compression, 1, model.head_dim),
                                       "k": clamp(seq * compression / 2, 1, seq)})

    def settings_from(self, model, seq, given) -> dict:
        return {"r": self.integer(given, "r", 1, model.head_dim, max(1, model.head_dim // 4)),
                "k": self.integer(given, "k", 1, seq, max(1, seq // 4))}

    def projection_bytes(self, model, kv_bytes: int) -> int:
        return model.layers * model.kv_heads * model.head_dim ** 2 * kv_bytes

    def ideal_bytes(self, w, s) -> int:
        d = w.model.head_dim
        return per_step(w, w.seq * s["r"] + 2 * s["k"] * d, 2 * d) * w.kv_bytes \
            + self.projection_bytes(w.model, w.kv_bytes)

    def attention_phases(self, w, s):
        sh = ib.Shape.of(w)
        m = w.model
        proj = Access(Pattern.STREAM, m.layers * m.kv_heads, m.head_dim * sh.row, what="PCA projections")
        prefix = Access(Pattern.GATHER, sh.kv_instances * sh.seq, s["r"] * sh.elem, row_bytes=sh.row, what="K prefix")
        return [
            Phase("project_and_score", (ib.read_q(sh), proj, prefix),
                  flops=(2 * s["r"] + ib.SCORE_OPS) * sh.seq * sh.q_instances + 2.0 * m.head_dim ** 2 * sh.q_instances,
                  launches=m.layers),
            attend(sh, s["k"], chosen_rows(sh, s["k"]), m.layers),
            ib.cache_append(sh, StoreK.ONCE),
        ]

    def fixed_bytes(self, model, kv_dtype, s) -> int:
        from sparq_sim import dtypes
        return self.projection_bytes(model, dtypes.nbytes(kv_dtype))


METHOD = Loki()
