"""SparQ Attention (Ribar et al., ICML 2024, arXiv 2312.04985): r query-chosen components of every
key, then the k best rows of K and V, and mean-value reallocation.

Traffic per batch element and layer, elements (the paper's formula, GQA-shared selections):
  Hkv * (S*r + 2*k*d_h) + Hq * 2*d_h  [+ Hkv * 2*d_h for the running value mean's read and write]

Variants (knobs):
* ``store_k = twice`` (default): step 1 streams r contiguous runs of a component-major copy K_t;
  ``once``: step 1 picks r scattered components of each position-major key row, so with 32-byte
  sectors or 64-byte lines it moves almost the whole row (the ideal count is unchanged; the
  granularity-rounded one shows it).
* ``kt_format``: the K_t copy kept in the KV dtype (``kv``) or narrower, ``int8`` or ``int4``
  with one fp16 scale per block of ``kt_block`` consecutive positions of a component
  (symmetric quantization; an assumed design, the paper stores K_t in the KV dtype). Step 1 only
  ranks positions, so its precision matters less than step 2's. Step 1 then reads, per KV head,
  ceil(S*r*bits/8) + r*ceil(S/kt_block)*2 bytes instead of S*r*bytes.

Memory per sequence (capacity.py for the KV-dtype copy): K, V and K_t, i.e. 3/2 of dense
(+50%) with ``store_k = twice``; with a narrow K_t, dense plus layers*Hkv*d_h*(ceil(S*bits/8) +
ceil(S/kt_block)*2) bytes (int8, block 64: +25.8%; int4: +13.3% at fp16 KV); with ``once``, as
dense. Reallocation adds layers*Hkv*d_h fp32 numbers per sequence (the running value mean).

Compression C: r = d_h*C, k = S*C/2, so S*r + 2*k*d_h = C * 2*S*d_h (workload.py).
"""

from __future__ import annotations

import math

from sparq_sim import capacity
from sparq_sim.errors import UserError
from sparq_sim.implementations import base as ib
from sparq_sim.methods.base import FORMAT_BITS, SCALE_BYTES, CopyFormat, Knob, MethodBase, MethodName, positive_int
from sparq_sim.registry import StoreK
from sparq_sim.traffic import Access, Pattern, Phase, ideal_attention_bytes
from sparq_sim.workload import Workload, settings_for_compression

KT_FORMATS = tuple(f.value for f in CopyFormat)
DEFAULT_KT_BLOCK = 64


class SparQ(MethodBase):
    name = MethodName.SPARQ.value
    description = "r query components of every key, then the k best rows of K and V"
    source = "Ribar et al., SparQ Attention, ICML 2024, arXiv 2312.04985"
    knobs = (
        Knob("r", "query components kept in step 1", "d_h/8", "arXiv 2312.04985, end-to-end runs at 1/8 compression"),
        Knob("k", "positions kept in step 2", "S/16", "arXiv 2312.04985, end-to-end runs at 1/8 compression"),
        Knob("local_window", "last positions always kept (l)", "0", "assumed: the kernel benchmarks use none"),
        Knob("store_k", "twice: component-major copy K_t serves step 1; once: it does not", "twice",
             "arXiv 2312.04985, section on memory layout"),
        Knob("kt_format", "K_t storage: kv (KV dtype), int8 or int4 with per-block fp16 scales", "kv",
             "arXiv 2312.04985 stores K_t in the KV dtype; int8/int4 are this project's variants"),
        Knob("kt_block", "positions per quantization scale of a narrow K_t", str(DEFAULT_KT_BLOCK),
             "assumed"),
        Knob("reallocate", "mean-value reallocation (step 3) and its running value mean", "true",
             "arXiv 2312.04985 (dropped for its GQA models)"),
    )
    keeps_whole_cache = True

    def default_settings(self, model, seq) -> dict:
        return self.settings_for_compression(model, seq, 1 / 8)

    def settings_for_compression(self, model, seq, compression) -> dict:
        r, k = settings_for_compression(model.head_dim, seq, compression)
        return self.check(model, seq, {"r": r, "k": k})

    def settings_from(self, model, seq, given) -> dict:
        r, k = settings_for_compression(model.head_dim, seq, 1 / 8)
        out = {"r": self.integer(given, "r", 1, model.head_dim, r), "k": self.integer(given, "k", 1, seq, k)}
        out["local_window"] = int(given.get("local_window", 0))
        out["store_k"] = str(given.get("store_k", StoreK.TWICE.value))
        out["kt_format"] = str(given.get("kt_format", CopyFormat.KV.value)).lower()
        out["kt_block"] = positive_int({"kt_block": given.get("kt_block", DEFAULT_KT_BLOCK)},
                                       "kt_block", 1, None, self.name)
        realloc = given.get("reallocate", True)
        if isinstance(realloc, str):
            if realloc.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise UserError(f"sparq: reallocate must be true or false, got {realloc!r}")
            realloc = realloc.lower() in ("true", "1", "yes")
        out["reallocate"] = bool(realloc)
        if out["kt_format"] not in KT_FORMATS:
            raise UserError(f"sparq: kt_format must be one of {', '.join(KT_FORMATS)}, got {out['kt_format']!r}")
        if out["store_k"] not in tuple(StoreK):
            raise UserError(f"sparq: store_k must be once or twice, got {out['store_k']!r}")
        if out["store_k"] == StoreK.ONCE and out["kt_format"] != CopyFormat.KV:
            raise UserError("sparq: kt_format int8/int4 is a format of the second K copy; it needs store_k = twice")
        if not 0 <= out["local_window"] <= out["k"]:
            raise UserError(f"sparq: local_window {out['local_window']} must be between 0 and k = {out['k']}")
        return out

    def workload(self, w: Workload, s: dict) -> Workload:
        """The project's SparQ workload with these settings (r, k, storage, reallocation)."""
        return Workload(model=w.model, seq=w.seq, batch=w.batch, r=s["r"], k=s["k"],
                        local_window=s["local_window"], kv_dtype=w.kv_dtype, weight_dtype=w.weight_dtype,
                        store_k=s["store_k"], reallocate=s["reallocate"])

    @staticmethod
    def step1_kt_bytes(seq: int, r: int, fmt: str, block: int, kv_bytes: int) -> int:
        """Bytes step 1 reads from K_t per KV head: r runs of S elements, plus their scales."""
        if fmt == CopyFormat.KV:
            return seq * r * kv_bytes
        return r * (math.ceil(seq * FORMAT_BITS[fmt] / 8) + math.ceil(seq / block) * SCALE_BYTES)

    def ideal_bytes(self, w, s) -> int:
        ws = self.workload(w, s)
        total = ideal_attention_bytes(ws, MethodName.SPARQ)
        if s["kt_format"] == CopyFormat.KV:
            return total
        m = w.model
        per_kv = self.step1_kt_bytes(w.seq, s["r"], s["kt_format"], s["kt_block"], w.kv_bytes) \
            - w.seq * s["r"] * w.kv_bytes
        return total + per_kv * m.kv_heads * w.batch * m.layers

    def attention_phases(self, w, s):
        from sparq_sim.implementations import get_implementation
        ws = self.workload(w, s)
        phases = get_implementation("ideal").attention_phases(ws, MethodName.SPARQ)
        if s["kt_format"] == CopyFormat.KV:
            return phases
        shape = ib.Shape.of(ws)
        fmt, block = s["kt_format"], s["kt_block"]
        runs = shape.kv_instances * shape.r
        step1 = phases[0]
        accesses = (ib.read_q(shape),
                    Access(Pattern.STREAM, runs, math.ceil(shape.seq * FORMAT_BITS[fmt] / 8), what=f"K_t ({fmt})"),
                    Access(Pattern.STREAM, runs, math.ceil(shape.seq / block) * SCALE_BYTES, what="K_t scales"))
        return [Phase(step1.name, accesses, flops=step1.flops, launches=step1.launches)] + phases[1:]

    def kv_bytes_per_sequence(self, model, seq, kv_dtype, s) -> int:
        state = capacity.state_bytes_per_sequence(model, MethodName.SPARQ, s["reallocate"])
        if s["kt_format"] == CopyFormat.KV:
            return capacity.kv_bytes_per_token(model, kv_dtype, MethodName.SPARQ, s["store_k"]) * seq + state
        dense = capacity.kv_bytes_per_token(model, kv_dtype, MethodName.DENSE) * seq
        per_component = self.step1_kt_bytes(seq, 1, s["kt_format"], s["kt_block"], 0)
        return dense + model.layers * model.kv_heads * model.head_dim * per_component + state


METHOD = SparQ()
