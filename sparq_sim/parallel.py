"""Tensor parallelism: a model split over N devices joined by a link, and its all-reduces.

Megatron-LM's split (Shoeybi et al. 2019, "Megatron-LM", section 3): each device holds 1/N of
every weight matrix (attention heads, MLP columns and rows, and the vocabulary-parallel
embedding and output layer) and 1/N of the query and KV heads, so 1/N of the weights and the
KV cache. When N exceeds the KV heads, each KV head is replicated on N / kv_heads devices (as
vLLM does for GQA models), so every device keeps one.

Each layer ends its attention block and its MLP block with an all-reduce of the activations
(tokens x d_model, in the activation dtype, fp16 here): 2 per layer per step. A ring all-reduce
of n bytes over N devices sends 2 (N - 1) / N x n bytes from each device in 2 (N - 1) steps
(Thakur, Rabenseifner and Gropp 2005, "Optimization of collective communication operations in
MPICH"): time = 2 (N - 1) x latency + 2 (N - 1) / N x n / link bandwidth, the link figures
from the hardware file's optional ``[link]`` section.
"""

from __future__ import annotations

from dataclasses import replace

from sparq_sim.errors import UserError
from sparq_sim.hardware import Link  # noqa: F401  (the link section, typed: sparq_sim.hardware)
from sparq_sim.models import ModelConfig

ACTIVATION_BYTES = 2       # fp16/bf16 activations in the all-reduce
ALLREDUCES_PER_LAYER = 2   # after attention and after the MLP


def device_link(device) -> Link | None:
    """The device's [link] section (optional in hardware files, checked when read); None without one."""
    return device.link


def check_tp(model: ModelConfig, tp: int, device=None) -> None:
    """tp must split the query heads evenly and the KV heads evenly (or be a multiple of them)."""
    if not isinstance(tp, int) or tp < 1:
        raise UserError(f"bad --tp {tp!r}: must be a positive integer")
    if model.heads % tp:
        raise UserError(f"--tp {tp} does not divide the {model.heads} query heads of {model.name}")
    if model.kv_heads % tp and tp % model.kv_heads:
        raise UserError(f"--tp {tp} neither divides nor is a multiple of the {model.kv_heads} KV heads "
                        f"of {model.name}")
    if tp > 1 and device is not None and device_link(device) is None:
        raise UserError(f"device {device.name} has no [link] section in its hardware file: "
                        "tensor parallelism needs the link's bandwidth and latency")


def shard_model(model: ModelConfig, tp: int) -> ModelConfig:
    """What one of `tp` devices holds: 1/tp of the heads and weights, at least one KV head."""
    check_tp(model, tp)
    if tp == 1:
        return model
    return replace(model, name=f"{model.name}/tp{tp}", heads=model.heads // tp,
                   kv_heads=max(1, model.kv_heads // tp), params=model.params / tp)


def allreduce_bytes(nbytes: float, tp: int) -> float:
    """Bytes each device sends in a ring all-reduce of `nbytes`: 2 (N - 1) / N x n."""
    return 2.0 * (tp - 1) / tp * nbytes


def allreduce_time(link: Link, tp: int, nbytes: float) -> float:
    """Ring all-reduce: 2 (N - 1) latencies plus the bytes sent over the link bandwidth."""
    if tp == 1:
        return 0.0
    return 2 * (tp - 1) * link.latency_s.value + allreduce_bytes(nbytes, tp) / link.bandwidth_Bps.value


def step_allreduce_bytes(model: ModelConfig, tokens: int) -> float:
    """Activation bytes of one all-reduce when `tokens` tokens pass the layer (batch, or prompt)."""
    return tokens * model.d_model * ACTIVATION_BYTES


def step_communication_bytes(model: ModelConfig, tp: int, tokens: int) -> float:
    """Bytes each device sends in one forward pass of `tokens` tokens: 2 all-reduces per layer."""
    return ALLREDUCES_PER_LAYER * model.layers * allreduce_bytes(step_allreduce_bytes(model, tokens), tp)


def communication_time(device, model: ModelConfig, tp: int, tokens: int) -> float:
    """All-reduce time of one forward pass of `tokens` tokens: 2 per layer."""
    if tp == 1:
        return 0.0
    check_tp(model, tp, device)
    per = allreduce_time(device_link(device), tp, step_allreduce_bytes(model, tokens))
    return ALLREDUCES_PER_LAYER * model.layers * per


def parse_tp(text) -> int | str:
    """--tp N or 'auto'."""
    t = str(text).strip().lower()
    if t == "auto":
        return "auto"
    try:
        n = int(t)
    except ValueError:
        raise UserError(f"bad --tp {text!r}: expected a positive integer or auto") from None
    if n < 1:
        raise UserError(f"bad --tp {text!r}: must be at least 1")
    return n


def tp_choices(model: ModelConfig, limit: int = 64) -> list[int]:
    """Tensor-parallel degrees the model allows, smallest first (powers of two up to `limit`)."""
    out, n = [], 1
    while n <= min(limit, model.heads):
        try:
            check_tp(model, n)
            out.append(n)
        except UserError:
            pass
        n *= 2
    return out
