"""StreamingLLM (Xiao et al., ICLR 2024, arXiv 2309.17453; mit-han-lab/streaming-llm) and
LM-Infinite (Han et al., NAACL 2024; Glaciohound/LM-Infinite): a few initial "sink" positions plus
a window of the most recent ones; everything else is dropped for good.

Traffic per batch element and layer, elements: Hkv * 2*(n_sink + window)*d_h + Hq * 2*d_h (the
kept rows of K and V, a bounded ring buffer read as one run each). Memory per sequence:
layers*Hkv*2*(n_sink + window)*d_h*bytes, bounded whatever S is.
Compression C: n_sink + window = C*S.
"""

from __future__ import annotations

from sparq_sim import dtypes
from sparq_sim.errors import UserError
from sparq_sim.implementations import base as ib
from sparq_sim.methods.base import Knob, MethodName, per_step, positive_int, unknown_knobs
from sparq_sim.traffic import STREAM, Access, Phase

SCORE_OPS = 5
DEFAULT_SINKS, DEFAULT_WINDOW = 4, 2000


class StreamingLLM:
    name = MethodName.STREAMINGLLM.value
    description = "attention sinks plus a recent window (LM-Infinite alike; lossy for good)"
    source = "Xiao et al., StreamingLLM, ICLR 2024, arXiv 2309.17453; Han et al., LM-Infinite, NAACL 2024"
    knobs = (
        Knob("n_sink", "initial sink positions kept", str(DEFAULT_SINKS), "mit-han-lab/streaming-llm: start_size 4"),
        Knob("window", "most recent positions kept", str(DEFAULT_WINDOW), "mit-han-lab/streaming-llm: recent_size 2000"),
    )
    keeps_whole_cache = False

    def default_settings(self, model, seq) -> dict:
        n = min(DEFAULT_SINKS, seq)
        return self.check(model, seq, {"n_sink": n, "window": max(0, min(DEFAULT_WINDOW, seq - n))})

    def settings_for_compression(self, model, seq, compression) -> dict:
        kept = max(1, min(seq, round(compression * seq)))
        n = min(DEFAULT_SINKS, kept)
        return self.check(model, seq, {"n_sink": n, "window": kept - n})

    def check(self, model, seq, settings) -> dict:
        unknown_knobs(self, settings)
        d = self.default_settings(model, seq) if not settings else {}
        n = positive_int(settings, "n_sink", 0, seq, self.name) if "n_sink" in settings else d.get("n_sink", min(DEFAULT_SINKS, seq))
        wdw = positive_int(settings, "window", 0, seq, self.name) if "window" in settings \
            else d.get("window", max(0, min(DEFAULT_WINDOW, seq - n)))
        if n + wdw < 1 or n + wdw > seq:
            raise UserError(f"streamingllm: n_sink + window = {n + wdw} must be between 1 and S = {seq}")
        return {"n_sink": n, "window": wdw}

    @staticmethod
    def kept(s: dict) -> int:
        return s["n_sink"] + s["window"]

    def ideal_bytes(self, w, s) -> int:
        d = w.model.head_dim
        return per_step(w, 2 * self.kept(s) * d, 2 * d) * w.kv_bytes

    def attention_phases(self, w, s):
        sh = ib.Shape.of(w)
        n = self.kept(s)
        return [
            Phase("attend", (ib.read_q(sh), Access(STREAM, sh.kv_instances, n * sh.row, what="K (sinks+window)"),
                             Access(STREAM, sh.kv_instances, n * sh.row, what="V (sinks+window)"), ib.write_out(sh)),
                  flops=(4 * sh.head_dim + SCORE_OPS) * n * sh.q_instances, launches=w.model.layers),
            ib.cache_append(sh, "once"),
        ]

    def kv_bytes_per_sequence(self, model, seq, kv_dtype, s) -> int:
        return 2 * model.layers * model.kv_heads * model.head_dim * self.kept(s) * dtypes.nbytes(kv_dtype)

    def fixed_bytes(self, model, kv_dtype, s) -> int:
        return 0


METHOD = StreamingLLM()
