"""StreamingLLM (Xiao et al., ICLR 2024, arXiv 2309.17453; mit-han-lab/streaming-llm) and
LM-Infinite (Han et al., NAACL 2024; Glaciohound/LM-Infinite): a few initial "sink" positions plus
a window of the most recent ones; everything else is dropped for good.

Traffic per batch element and layer, elements: Hkv * 2*(n_sink + window)*d_h + Hq * 2*d_h (the
kept rows of K and V, a bounded ring buffer read as one run each). Memory per sequence:
layers*Hkv*2*(n_sink + window)*d_h*bytes, bounded whatever S is.
Compression C: n_sink + window = C*S.
"""

from __future__ import annotations

from sparq_sim.methods.base import KeptPositions, Knob, MethodName

DEFAULT_SINKS, DEFAULT_WINDOW = 4, 2000


class StreamingLLM(KeptPositions):
    name = MethodName.STREAMINGLLM.value
    description = "attention sinks plus a recent window (LM-Infinite alike; lossy for good)"
    source = "Xiao et al., StreamingLLM, ICLR 2024, arXiv 2309.17453; Han et al., LM-Infinite, NAACL 2024"
    knobs = (
        Knob("n_sink", "initial sink positions kept", str(DEFAULT_SINKS), "mit-han-lab/streaming-llm: start_size 4"),
        Knob("window", "most recent positions kept", str(DEFAULT_WINDOW), "mit-han-lab/streaming-llm: recent_size 2000"),
    )
    parts = ("n_sink", "window")
    kept_label = "sinks+window"

    def part_default(self, knob, seq, chosen) -> int:
        if knob == "n_sink":
            return min(DEFAULT_SINKS, seq)
        return max(0, min(DEFAULT_WINDOW, seq - chosen["n_sink"]))

    def settings_for_compression(self, model, seq, compression) -> dict:
        kept = max(1, min(seq, round(compression * seq)))
        n = min(DEFAULT_SINKS, kept)
        return self.check(model, seq, {"n_sink": n, "window": kept - n})


METHOD = StreamingLLM()
