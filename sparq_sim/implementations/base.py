"""Building blocks shared by implementation models: the phases every attention kernel has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sparq_sim.registry import MethodName, StoreK
from sparq_sim.traffic import Access, Part, Pattern, Phase, weight_bytes
from sparq_sim.workload import Workload

SCORE_OPS = 5  # per score beyond the dot product: scale, max, exp, sum, selection compare


class RowLatency(Protocol):
    """Seconds one gathered row of `row_bytes` takes on `device` with `rows_in_flight` rows
    outstanding across the device; None where the device's memory is not described."""

    def __call__(self, device, rows_in_flight: int, row_bytes: int) -> float | None: ...


@runtime_checkable
class ImplementationModel(Protocol):
    """How an implementation turns a workload into phases for the whole decoding step.

    Optional members a model may add (callers read them with ``getattr`` and a default):

    * ``kernel_labels(w) -> (dense, sparq)``: the measured kernels it is made of, whose
      validated error `predict` reports (default: none);
    * ``default_timing: str``: the timer it is meant for (default ``"roofline"``);
    * ``cuda_graph: bool``: replayed as one CUDA graph (default False);
    * ``check_device(device) -> None``: raises UserError for a device it does not model;
    * ``configure(**options) -> ImplementationModel``: the model with command-line options set
      (e.g. llama.cpp's ``threads``); without it, the model takes no options;
    * ``with_row_latency(latency: RowLatency) -> ImplementationModel``: the model with a
      device's loaded row latency to time its gathers by (``predict`` hands it the DRAM
      simulator's, which sits above the implementation models).
    """

    name: str
    description: str

    def attention_phases(self, w: Workload, method: MethodName | str, device=None) -> list[Phase]: ...

    def other_phases(self, w: Workload, device=None) -> list[Phase]: ...


@dataclass(frozen=True)
class Shape:
    """Counts an implementation model needs, for the whole step (all layers, whole batch)."""

    kv_instances: int     # B * Hkv * L: one per KV head and layer
    q_instances: int      # B * Hq * L: one per query head and layer
    seq: int
    head_dim: int
    elem: int             # bytes per KV element
    r: int
    k: int
    layers: int = 1       # layers the instances cover (kernels run once per layer)

    @classmethod
    def of(cls, w: Workload) -> "Shape":
        m = w.model
        return cls(w.batch * m.kv_heads * m.layers, w.batch * m.heads * m.layers, w.seq,
                   m.head_dim, w.kv_bytes, w.r, w.k, m.layers)

    @property
    def row(self) -> int:
        """Bytes of one position's key or value row."""
        return self.head_dim * self.elem


def read_q(s: Shape) -> Access:
    return Access(Pattern.STREAM, s.q_instances, s.row, what="q")


def write_out(s: Shape) -> Access:
    return Access(Pattern.STREAM, s.q_instances, s.row, write=True, what="out")


def stream_all(s: Shape, what: str) -> Access:
    """The whole K or V of every head, position-major, read front to back."""
    return Access(Pattern.STREAM, s.kv_instances, s.seq * s.row, what=what)


def step1_keys(s: Shape, store_k: StoreK | str) -> Access:
    """SparQ step 1's key reads: r contiguous runs of K_t, or r scattered elements per K row."""
    if store_k == StoreK.TWICE:
        return Access(Pattern.STREAM, s.kv_instances * s.r, s.seq * s.elem, what="K_t")
    return Access(Pattern.SPARSE_ROWS, s.kv_instances * s.seq, s.elem, picks=s.r, row_bytes=s.row, what="K")


def gather_rows(s: Shape, what: str, rows: int | None = None) -> Access:
    """k whole rows of K or V at data-dependent positions."""
    return Access(Pattern.GATHER, s.kv_instances * (s.k if rows is None else rows), s.row, what=what)


def value_mean(s: Shape) -> tuple[Access, Access]:
    """Read and write back the running mean of V (reallocation), once per KV head."""
    return (Access(Pattern.STREAM, s.kv_instances, s.row, what="v_mean"),
            Access(Pattern.STREAM, s.kv_instances, s.row, write=True, what="v_mean"))


def cache_append(s: Shape, store_k: StoreK | str) -> Phase:
    """Writing this step's key and value into the cache (and into K_t, one element per component)."""
    accesses = [Access(Pattern.GATHER, 2 * s.kv_instances, s.row, write=True, what="K,V append")]
    if store_k == StoreK.TWICE:
        # Component-major: each of the d_h components lands in a different run of S elements.
        accesses.append(Access(Pattern.GATHER, s.kv_instances * s.head_dim, s.elem, row_bytes=s.seq * s.elem,
                               write=True, what="K_t append"))
    return Phase("kv_append", tuple(accesses), in_formula=False)


def weights_phase(w: Workload, launches_per_layer: int = 0) -> Phase:
    """Every weight read once per step; 2 flops per parameter per batch element."""
    layers = w.model.layers
    per_layer = int(round(weight_bytes(w) / layers))
    return Phase("weights", (Access(Pattern.STREAM, layers, per_layer, what="weights"),),
                 flops=2.0 * w.model.params * w.batch, flop_dtype=w.weight_dtype,
                 launches=launches_per_layer * layers, part=Part.OTHER)
