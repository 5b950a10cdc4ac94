"""Dense attention: every key and value of every position, every step. The baseline of every speedup.

Per batch element and layer: Hkv * 2*S*d_h + Hq * 2*d_h elements (K and V once per KV head; q read
and output written once per query head). Memory: K and V, layers x Hkv x d_h x S x bytes x 2.
Source: the standard KV-cached decoding step (e.g. arXiv 2312.04985, section 2).
"""

from __future__ import annotations

from sparq_sim.methods.base import MethodBase, MethodName
from sparq_sim.traffic import ideal_attention_bytes


class Dense(MethodBase):
    name = MethodName.DENSE.value
    description = "all keys and values every step (the baseline)"
    source = "standard KV-cached decoding"
    knobs = ()
    keeps_whole_cache = True

    def settings_for_compression(self, model, seq, compression) -> dict:
        return {}

    def ideal_bytes(self, w, settings) -> int:
        return ideal_attention_bytes(w, MethodName.DENSE)

    def attention_phases(self, w, settings):
        from sparq_sim.implementations import get_implementation
        return get_implementation("ideal").attention_phases(w, MethodName.DENSE)


METHOD = Dense()
