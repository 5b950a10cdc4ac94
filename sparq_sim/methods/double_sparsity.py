"""Double Sparsity (Yang et al., 2024, arXiv 2408.07092; andy-yang-1/DoubleSparse): r channels of
every key, chosen offline by calibration, kept contiguous in a "label cache"; approximate scores
from the labels pick the k best positions, whose K and V rows are then read whole.

Traffic per batch element and layer, bytes: Hkv * (label(S*r) + 2*k*d_h*bytes) + Hq * 2*d_h*bytes,
label(n) = n elements in the label format (the KV dtype; or int8/int4 with one fp16 scale per
block of 64 positions of a channel, as this project models narrow copies), i.e. S*r*(b_label/b)
+ 2*k*d_h elements as the paper counts it. The offline channel index table (r numbers per layer
and head) is negligible and not counted.
Memory per sequence: dense plus the label cache, layers*Hkv*label(S*r).
Compression C: r = d_h*C channels, k = S*(C - r*b_label/(2*d_h*b)) (= S*C/2 with labels in the
KV dtype, more positions with narrower labels).
"""

from __future__ import annotations

import math

from sparq_sim.errors import UserError
from sparq_sim.implementations import base as ib
from sparq_sim.methods.base import (FORMAT_BITS, SCALE_BYTES, CopyFormat, Knob, MethodBase, MethodName, attend,
                                    chosen_rows, clamp, dense_kv_bytes_per_sequence)
from sparq_sim.registry import StoreK
from sparq_sim.traffic import Access, Pattern, Phase

LABEL_FORMATS = tuple(f.value for f in CopyFormat)
LABEL_BLOCK = 64


def label_bytes(seq: int, r: int, fmt: str, kv_bytes: int) -> int:
    """Bytes of one KV head's label cache: S positions x r channels, plus scales when narrow."""
    if fmt == CopyFormat.KV:
        return seq * r * kv_bytes
    return math.ceil(seq * r * FORMAT_BITS[fmt] / 8) + r * math.ceil(seq / LABEL_BLOCK) * SCALE_BYTES


class DoubleSparsity(MethodBase):
    name = MethodName.DOUBLE_SPARSITY.value
    description = "r calibrated channels from a contiguous label cache, then the k best rows"
    source = "Yang et al., Double Sparsity, arXiv 2408.07092"
    knobs = (
        Knob("r", "calibrated channels in the label cache", "d_h/8", "assumed: 1/8 of the channels"),
        Knob("k", "positions read whole", "S/16", "assumed: as SparQ at 1/8"),
        Knob("label_format", "label cache storage: kv, int8 or int4", "kv", "arXiv 2408.07092 (fp16 labels)"),
    )
    keeps_whole_cache = True

    def default_settings(self, model, seq) -> dict:
        return self.settings_for_compression(model, seq, 1 / 8)

    def settings_for_compression(self, model, seq, compression, label_format: str = CopyFormat.KV.value, kv_bytes: int = 2) -> dict:
        r = clamp(model.head_dim * compression, 1, model.head_dim)
        frac = label_bytes(seq, r, label_format, kv_bytes) / (2 * seq * model.head_dim * kv_bytes)
        k = clamp(seq * (compression - frac), 1, seq)
        return self.check(model, seq, {"r": r, "k": k, "label_format": label_format})

    def settings_from(self, model, seq, given) -> dict:
        out = {"r": self.integer(given, "r", 1, model.head_dim, max(1, model.head_dim // 8)),
               "k": self.integer(given, "k", 1, seq, max(1, seq // 16)),
               "label_format": str(given.get("label_format", CopyFormat.KV.value)).lower()}
        if out["label_format"] not in LABEL_FORMATS:
            raise UserError(f"double-sparsity: label_format must be one of {', '.join(LABEL_FORMATS)}, "
                            f"got {out['label_format']!r}")
        return out

    def ideal_bytes(self, w, s) -> int:
        m = w.model
        per_kv = label_bytes(w.seq, s["r"], s["label_format"], w.kv_bytes) + 2 * s["k"] * m.head_dim * w.kv_bytes
        return (m.kv_heads * per_kv + m.heads * 2 * m.head_dim * w.kv_bytes) * w.batch * m.layers

    def attention_phases(self, w, s):
        sh = ib.Shape.of(w)
        fmt = s["label_format"]
        labels = [Access(Pattern.STREAM, sh.kv_instances, label_bytes(sh.seq, s["r"], fmt, sh.elem)
                         - (0 if fmt == CopyFormat.KV else s["r"] * math.ceil(sh.seq / LABEL_BLOCK) * SCALE_BYTES),
                         what=f"label cache ({fmt})")]
        if fmt != CopyFormat.KV:
            labels.append(Access(Pattern.STREAM, sh.kv_instances, s["r"] * math.ceil(sh.seq / LABEL_BLOCK) * SCALE_BYTES,
                                 what="label scales"))
        return [
            Phase("labels", (ib.read_q(sh), *labels),
                  flops=(2 * s["r"] + ib.SCORE_OPS) * sh.seq * sh.q_instances, launches=w.model.layers),
            attend(sh, s["k"], chosen_rows(sh, s["k"]), w.model.layers),
            ib.cache_append(sh, StoreK.ONCE),
        ]

    def kv_bytes_per_sequence(self, model, seq, kv_dtype, s) -> int:
        from sparq_sim import dtypes
        lab = label_bytes(seq, s["r"], s["label_format"], dtypes.nbytes(kv_dtype))
        return dense_kv_bytes_per_sequence(model, seq, kv_dtype) + model.layers * model.kv_heads * lab


METHOD = DoubleSparsity()
