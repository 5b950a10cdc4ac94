"""Prefill (time to first token): the prompt's forward pass, counted as flops and bytes.

Prefill runs dense attention for both methods (SparQ changes decoding only); the one difference
is what it writes: SparQ with K stored twice also writes the component-major copy of K.

Two phases, each timed as max(flops / peak rate, bytes / sustained bandwidth) on the device,
the peak rate being that of the weight dtype (the GEMMs run in it; dequantised weights fall back
to the wider unit, as ``Device.peak`` does):

* ``weights``: the linear layers, 2 flops per parameter per prompt token (Kaplan et al. 2020,
  "Scaling Laws for Neural Language Models", table 1: forward pass C = 2N per token); every
  weight read once (the prompt is processed in one pass, weights stream once).
* ``attention``: QK^T and PV over the causal triangle, 2 * d_h flops each per (query, key) pair
  and query head, half the P x P pairs: 4 * L * Hq * d_h * P^2 / 2 flops (Kaplan et al.: 2 *
  n_layer * n_ctx * d_attn per token for both products, before the causal halving that fused
  kernels such as FlashAttention exploit, Dao et al. 2022). Bytes: the KV cache written (every
  copy the method keeps) and K and V read back once by a fused kernel.

Activations between layers and the softmax's exponentials are left out: at the prompt lengths
where prefill matters both are small beside the GEMMs and the attention products.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparq_sim import dtypes
from sparq_sim.capacity import kv_copies
from sparq_sim.models import ModelConfig
from sparq_sim.timing.result import Bound


@dataclass(frozen=True)
class PrefillPhase:
    name: str
    flops: float
    bytes: float
    compute_s: float
    memory_s: float

    @property
    def time_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        return Bound.COMPUTE if self.compute_s >= self.memory_s else Bound.MEMORY

    def to_dict(self) -> dict:
        return {"name": self.name, "flops": self.flops, "bytes": self.bytes, "compute_s": self.compute_s,
                "memory_s": self.memory_s, "time_s": self.time_s, "bound": self.bound}


@dataclass(frozen=True)
class Prefill:
    prompt: int
    batch: int
    phases: tuple[PrefillPhase, ...]
    extra_s: float = 0.0          # costs outside the phases (tensor-parallel all-reduces)

    @property
    def time_s(self) -> float:
        return sum(p.time_s for p in self.phases) + self.extra_s

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "batch": self.batch, "time_s": self.time_s, "extra_s": self.extra_s,
                "phases": [p.to_dict() for p in self.phases]}


def prefill_flops(model: ModelConfig, prompt: int, batch: int = 1) -> dict:
    """Flops of the two phases for `batch` prompts of `prompt` tokens."""
    p = prompt
    return {"weights": 2.0 * model.params * p * batch,
            "attention": 4.0 * model.layers * model.heads * model.head_dim * p * p / 2 * batch}


def prefill_bytes(model: ModelConfig, prompt: int, batch: int = 1, *, method: str = "dense",
                  kv_dtype: str = "float16", weight_dtype: str = "float16", store_k: str = "twice") -> dict:
    """Bytes of the two phases: weights read once; KV written (all copies) and K, V read once."""
    row = model.layers * model.kv_heads * model.head_dim * dtypes.nbytes(kv_dtype) * prompt * batch
    return {"weights": model.params * dtypes.nbytes(weight_dtype),
            "attention": row * (kv_copies(method, store_k) + 2)}


def prefill(device, model: ModelConfig, prompt: int, batch: int = 1, *, method: str = "dense",
            kv_dtype: str = "float16", weight_dtype: str = "float16", store_k: str = "twice",
            extra_s: float = 0.0) -> Prefill:
    """Time of the prompt's forward pass on `device` (one request, or `batch` of equal prompts)."""
    flops = prefill_flops(model, prompt, batch)
    nbytes = prefill_bytes(model, prompt, batch, method=method, kv_dtype=kv_dtype,
                           weight_dtype=weight_dtype, store_k=store_k)
    peak, bw = device.peak(dtypes.canonical(weight_dtype)), device.sustained_bandwidth
    phases = tuple(PrefillPhase(name, flops[name], nbytes[name], flops[name] / peak, nbytes[name] / bw)
                   for name in ("weights", "attention"))
    return Prefill(prompt, batch, phases, extra_s)
