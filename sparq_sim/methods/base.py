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

``MethodBase`` holds the defaults most methods share (settings checked knob by knob, memory as
dense) and ``KeptPositions`` the eviction and window methods' common model; ``attend``,
``kept_rows`` and ``chosen_rows`` build the phases several methods end with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sparq_sim import dtypes
from sparq_sim.errors import UserError
from sparq_sim.implementations.base import SCORE_OPS, Shape, cache_append, gather_rows, read_q, write_out
from sparq_sim.models import ModelConfig
from sparq_sim.registry import Choice, MethodName, StoreK  # noqa: F401  (MethodName: each method names itself by it)
from sparq_sim.traffic import Access, Pattern, Phase
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


class CopyFormat(Choice):
    """How a method stores a copy it keeps beside the KV cache (SparQ's K_t, a label cache)."""

    KV = "kv"       # the KV cache's own dtype
    INT8 = "int8"   # symmetric 8-bit, one fp16 scale per block
    INT4 = "int4"


# Bits per stored element of the narrow formats.
FORMAT_BITS = {CopyFormat.INT8: 8, CopyFormat.INT4: 4}
SCALE_BYTES = 2   # one fp16 scale per block of a quantized tensor


def format_bytes_of(n_elements: int, fmt: str, kv_dtype: str) -> int:
    """Bytes of n elements stored in `fmt` ("kv" = the KV cache's own dtype, "int8", "int4")."""
    if fmt == CopyFormat.KV:
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


class MethodBase:
    """What most methods share: settings checked knob by knob (``given`` -> full settings, in
    ``settings_from``), the published default as every knob at its default, and memory as
    dense with nothing per model. A method overrides what is its own."""

    name: str
    knobs: tuple[Knob, ...] = ()
    keeps_whole_cache = True

    def check(self, model: ModelConfig, seq: int, settings: dict) -> dict:
        unknown_knobs(self, settings)
        return self.settings_from(model, seq, settings)

    def settings_from(self, model: ModelConfig, seq: int, given: dict) -> dict:
        return {}

    def default_settings(self, model: ModelConfig, seq: int) -> dict:
        return self.check(model, seq, {})

    def integer(self, given: dict, key: str, low: int, high: int | None, default: int) -> int:
        """given[key] as an integer in [low, high] (UserError naming the knob), or `default`."""
        return positive_int(given, key, low, high, self.name) if key in given else default

    def kv_bytes_per_sequence(self, model: ModelConfig, seq: int, kv_dtype: str, settings: dict) -> int:
        return dense_kv_bytes_per_sequence(model, seq, kv_dtype)

    def fixed_bytes(self, model: ModelConfig, kv_dtype: str, settings: dict) -> int:
        return 0


class KeptPositions(MethodBase):
    """Methods that keep a bounded set of positions and drop the rest for good (H2O's heavy
    hitters and recent positions, StreamingLLM's sinks and window). Two knobs (`parts`) count
    the positions kept; their K and V rows are stored compacted, so each is read as one run.
    A method that also keeps a number per position seen (H2O's accumulated scores) says how
    many in ``per_position`` and adds the phases that update them."""

    keeps_whole_cache = False
    parts: tuple[str, str]
    kept_label: str           # what the kept rows are called in reports
    per_position = 0          # numbers kept for every position seen, beside the kept rows

    def part_default(self, knob: str, seq: int, chosen: dict) -> int:
        raise NotImplementedError

    def settings_from(self, model, seq, given) -> dict:
        out: dict = {}
        for knob in self.parts:
            out[knob] = self.integer(given, knob, 0, seq, self.part_default(knob, seq, out))
        kept = self.kept(out)
        if kept < 1 or kept > seq:
            raise UserError(f"{self.name}: {' + '.join(self.parts)} = {kept} must be between 1 and S = {seq}")
        return out

    def kept(self, s: dict) -> int:
        return sum(s[knob] for knob in self.parts)

    def ideal_bytes(self, w: Workload, s: dict) -> int:
        """K and V of the kept rows, and a read and a write of each per-position number."""
        d = w.model.head_dim
        return per_step(w, 2 * self.kept(s) * d + 2 * self.per_position * w.seq, 2 * d) * w.kv_bytes

    def per_position_phases(self, sh: Shape, w: Workload) -> list[Phase]:
        return []

    def attention_phases(self, w: Workload, s: dict) -> list[Phase]:
        sh = Shape.of(w)
        n = self.kept(s)
        return [attend(sh, n, (read_q(sh), *kept_rows(sh, n, self.kept_label)), w.model.layers),
                *self.per_position_phases(sh, w), cache_append(sh, StoreK.ONCE)]

    def kv_bytes_per_sequence(self, model, seq, kv_dtype, s) -> int:
        per_head = 2 * self.kept(s) * model.head_dim + self.per_position * seq
        return model.layers * model.kv_heads * per_head * dtypes.nbytes(kv_dtype)


def attend(sh: Shape, rows: int, reads: tuple[Access, ...], layers: int, name: str = "attend") -> Phase:
    """Exact attention over `rows` positions per query head (scores, softmax, weighted values;
    one launch per layer): `reads` then the output's write."""
    return Phase(name, (*reads, write_out(sh)), flops=(4 * sh.head_dim + SCORE_OPS) * rows * sh.q_instances,
                 launches=layers)


def kept_rows(sh: Shape, rows: int, what: str) -> tuple[Access, Access]:
    """K and V of `rows` positions kept compacted (eviction, windows): one run each per KV head."""
    return (Access(Pattern.STREAM, sh.kv_instances, rows * sh.row, what=f"K ({what})"),
            Access(Pattern.STREAM, sh.kv_instances, rows * sh.row, what=f"V ({what})"))


def chosen_rows(sh: Shape, rows: int) -> tuple[Access, Access]:
    """K and V rows of `rows` chosen positions, gathered whole from the cache."""
    return gather_rows(sh, "K", rows=rows), gather_rows(sh, "V", rows=rows)
