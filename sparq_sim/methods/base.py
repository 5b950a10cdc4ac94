"""What every sparse-attention method provides, and the shapes its formulas use.

A method turns a workload (model shape, S, batch, dtypes) and its own settings (the knobs:
r, k, page size, token budget...) into:

* ``ideal_bytes``: the bytes its decoding step must read and write by its published rule
  (the formula in the method's docstring, with its source), for the whole step (all layers,
  whole batch);
* ``attention_phases``: the same traffic as ``Access`` patterns of ``Phase`` objects
  (sparq_sim.traffic), so any timer can time it and every access is rounded to the device's
  granularity (sectors, lines) for the moved-byte count;
* ``kv_bytes_per_sequence``: the KV memory one sequence of S tokens occupies with the method
  (more than dense for SparQ's second K copy, Quest's page metadata or a label cache; less for
  eviction and window methods), and ``fixed_bytes``: memory per model rather than per sequence
  (Loki's projections);
* ``settings_for_compression``: the knobs that move a fraction C of dense attention's ideal
  traffic, where the method can reach C (UserError otherwise).

Counts follow the project's convention for dense and SparQ: per batch element and layer, KV
terms once per KV head (GQA), the query read and the output write once per query head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sparq_sim import dtypes
from sparq_sim.errors import UserError
from sparq_sim.models import ModelConfig
from sparq_sim.names import MethodName  # noqa: F401  (each method names itself by it)
from sparq_sim.traffic import Phase
from sparq_sim.workload import Workload


@dataclass(frozen=True)
class Knob:
    """One setting of a method: its name, what it means, and where its default comes from."""

    name: str
    meaning: str
    default: str          # how the published default is set, e.g. "d_h/8" or "16"
    default_source: str   # the paper or repository it comes from, or "assumed: ..."


@runtime_checkable
class Method(Protocol):
    name: str
    description: str
    source: str
    knobs: tuple[Knob, ...]
    keeps_whole_cache: bool   # False for eviction and window methods (information lost for good)

    def default_settings(self, model: ModelConfig, seq: int) -> dict: ...

    def settings_for_compression(self, model: ModelConfig, seq: int, compression: float) -> dict: ...

    def check(self, model: ModelConfig, seq: int, settings: dict) -> dict: ...

    def ideal_bytes(self, w: Workload, settings: dict) -> int: ...

    def attention_phases(self, w: Workload, settings: dict) -> list[Phase]: ...

    def kv_bytes_per_sequence(self, model: ModelConfig, seq: int, kv_dtype: str, settings: dict) -> int: ...

    def fixed_bytes(self, model: ModelConfig, kv_dtype: str, settings: dict) -> int: ...


# Bits per stored element of the narrow formats a method may keep beside the KV cache.
FORMAT_BITS = {"int8": 8, "int4": 4}
SCALE_BYTES = 2   # one fp16 scale per block of a quantized tensor


def format_bytes_of(n_elements: int, fmt: str, kv_dtype: str) -> int:
    """Bytes of n elements stored in `fmt` ("kv" = the KV cache's own dtype, "int8", "int4")."""
    if fmt == "kv":
        return n_elements * dtypes.nbytes(kv_dtype)
    return math.ceil(n_elements * FORMAT_BITS[fmt] / 8)


def per_step(w: Workload, per_kv_head: int, per_q_head: int) -> int:
    """Whole-step total of per-(batch element, layer) terms: KV-head terms and query-head terms."""
    m = w.model
    return (m.kv_heads * per_kv_head + m.heads * per_q_head) * w.batch * m.layers


def dense_kv_bytes_per_sequence(model: ModelConfig, seq: int, kv_dtype: str) -> int:
    """K and V of every position: layers x kv_heads x d_h x S x bytes x 2."""
    return 2 * model.layers * model.kv_heads * model.head_dim * seq * dtypes.nbytes(kv_dtype)


def positive_int(settings: dict, key: str, low: int = 1, high: int | None = None, method: str = "") -> int:
    """settings[key] as an integer in [low, high], or UserError naming the knob."""
    value = settings.get(key)
    try:
        as_int = int(value)
    except (TypeError, ValueError):
        raise UserError(f"{method}: {key} must be an integer, got {value!r}") from None
    if as_int != value and not (isinstance(value, str) and str(as_int) == value.strip()):
        if not (isinstance(value, float) and value.is_integer()):
            raise UserError(f"{method}: {key} must be an integer, got {value!r}")
    if as_int < low or (high is not None and as_int > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise UserError(f"{method}: {key} = {as_int} must be {bound}")
    return as_int


def unknown_knobs(method, settings: dict) -> None:
    known = {k.name for k in method.knobs}
    extra = sorted(set(settings) - known)
    if extra:
        raise UserError(f"{method.name}: unknown setting {', '.join(extra)}: choose from "
                        f"{', '.join(sorted(known)) or 'none'}")


def clamp(value: float, low: int, high: int) -> int:
    return int(min(max(round(value), low), high))
