"""Quest, query-aware page selection (Tang et al., ICML 2024, arXiv 2406.10774; mit-han-lab/Quest).

The cache is split in pages of P positions; each page keeps the element-wise minimum and maximum
of its keys (metadata). Each step scores every page by an upper bound of q.k from its min and max,
then reads the best pages whole, up to a token budget B (B/P pages).

Traffic per batch element and layer, elements: Hkv * (2*d_h*ceil(S/P) + 2*B*d_h) + Hq * 2*d_h
(metadata of every page, then K and V of the chosen pages). The paper selects per query head
(multi-head models); under GQA this model shares the pages per KV head (the group's summed
bounds), as SparQ shares its positions, so KV terms count once per KV head.
Memory per sequence: dense plus the metadata, layers*Hkv*2*d_h*ceil(S/P)*bytes: 2/P of K,
1/P of K+V (6.25% at P = 16).
Compression C: 2*d_h*S/P + 2*B*d_h = C*2*S*d_h, so B = S*(C - 1/P), rounded down to whole
pages; C must exceed 1/P.
"""

from __future__ import annotations

import math

from sparq_sim import dtypes
from sparq_sim.errors import UserError
from sparq_sim.implementations import base as ib
from sparq_sim.methods.base import Knob, MethodBase, MethodName, attend, dense_kv_bytes_per_sequence, per_step
from sparq_sim.registry import StoreK
from sparq_sim.traffic import Access, Pattern, Phase

DEFAULT_PAGE, DEFAULT_BUDGET = 16, 2048


class Quest(MethodBase):
    name = MethodName.QUEST.value
    description = "per-page min/max key bounds, then the best pages whole up to a token budget"
    source = "Tang et al., Quest, ICML 2024, arXiv 2406.10774"
    knobs = (
        Knob("page", "positions per page P", str(DEFAULT_PAGE), "arXiv 2406.10774: page size 16"),
        Knob("budget", "token budget B (a multiple of P)", str(DEFAULT_BUDGET),
             "assumed: arXiv 2406.10774 reports budgets from 256 to 4096"),
    )
    keeps_whole_cache = True

    def settings_for_compression(self, model, seq, compression) -> dict:
        page = min(DEFAULT_PAGE, seq)
        budget = math.floor(seq * (compression - 1 / page) / page) * page
        if budget < page:
            raise UserError(f"quest's page metadata alone moves 1/P = 1/{page} of dense attention's "
                            f"traffic: it cannot reach compression {compression:.4g} with P = {page}")
        return self.check(model, seq, {"page": page, "budget": min(budget, seq // page * page)})

    def settings_from(self, model, seq, given) -> dict:
        page = self.integer(given, "page", 1, seq, min(DEFAULT_PAGE, seq))
        budget = self.integer(given, "budget", 1, seq, min(DEFAULT_BUDGET, seq // page * page))
        if budget % page or budget < page:
            raise UserError(f"quest: budget {budget} must be a whole number of pages of {page} (at least one)")
        return {"page": page, "budget": budget}

    def ideal_bytes(self, w, s) -> int:
        d, pages = w.model.head_dim, math.ceil(w.seq / s["page"])
        return per_step(w, 2 * d * pages + 2 * s["budget"] * d, 2 * d) * w.kv_bytes

    def attention_phases(self, w, s):
        sh = ib.Shape.of(w)
        pages, chosen = math.ceil(sh.seq / s["page"]), s["budget"] // s["page"]
        page_bytes, layers = s["page"] * sh.row, w.model.layers
        bounds = Access(Pattern.STREAM, 2 * sh.kv_instances, pages * sh.row, what="page min/max keys")
        chosen_pages = (Access(Pattern.GATHER, sh.kv_instances * chosen, page_bytes, what="K pages"),
                        Access(Pattern.GATHER, sh.kv_instances * chosen, page_bytes, what="V pages"))
        return [
            Phase("page_bounds", (ib.read_q(sh), bounds),
                  flops=(4 * sh.head_dim + ib.SCORE_OPS) * pages * sh.q_instances, launches=layers),
            attend(sh, s["budget"], chosen_pages, layers, name="attend_pages"),
            ib.cache_append(sh, StoreK.ONCE),
        ]

    def kv_bytes_per_sequence(self, model, seq, kv_dtype, s) -> int:
        meta = model.layers * model.kv_heads * 2 * model.head_dim * math.ceil(seq / s["page"]) * dtypes.nbytes(kv_dtype)
        return dense_kv_bytes_per_sequence(model, seq, kv_dtype) + meta


METHOD = Quest()
