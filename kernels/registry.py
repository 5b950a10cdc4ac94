"""Which function runs each ``impl`` of ``dense_attention`` and ``sparq_attention``.

A kernel is looked up by its ``impl`` name and imported only when it is first called, so
``import sparq_sim.kernels`` loads neither numba nor Triton. An unknown name is a UserError
listing the known ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

from sparq_sim.registry import Registry, load


class Op(str, Enum):
    """The two attention ops of one decoding step."""

    DENSE = "dense"   # softmax(q . K^T / sqrt(d_h)) . V
    SPARQ = "sparq"   # SparQ Attention (docs/method.md)


@runtime_checkable
class Kernel(Protocol):
    """One implementation of one op, called with arguments already checked (kernels._checks).

    Takes q (B, Hq, d_h) and K, V (B, Hkv, S, d_h); a SparQ kernel also takes the keywords
    r, k, local_window, reallocate, v_mean and K_t. Returns (B, Hq, d_h) in q's dtype.
    """

    name: str   # the ``impl`` name users pass
    op: Op

    def __call__(self, q, K, V, **settings): ...


@dataclass(frozen=True)
class LazyKernel:
    """A kernel whose function (``"module:function"``) is imported on its first call.
    `fixed` are keyword arguments it always gets (e.g. K_t=None: K read once, position-major)."""

    name: str
    op: Op
    target: str
    fixed: dict = field(default_factory=dict)

    def __call__(self, q, K, V, **settings):
        return load(self.target)(q, K, V, **{**settings, **self.fixed})


def _registry(op: Op, entries: tuple[tuple[str, str, dict], ...]) -> Registry[Kernel]:
    kernels: Registry[Kernel] = Registry(
        "impl", normalise=lambda name: name if isinstance(name, str) else "",
        unknown="unknown impl {name!r} for " + f"{op.value}_attention" + ": choose from {choices}")
    for name, target, fixed in entries:
        kernels.add(name, LazyKernel(name, op, target, fixed))
    return kernels


_K = "sparq_sim.kernels"
DENSE_KERNELS = _registry(Op.DENSE, (
    ("reference", f"{_K}.reference:dense_attention", {}),
    ("cpu", f"{_K}.cpu_api:dense_attention", {}),
    ("triton", f"{_K}.triton_api:dense_attention", {}),
    ("torch-eager", f"{_K}.torch_eager:dense_eager", {}),
    ("torch-sdpa", f"{_K}.torch_eager:dense_sdpa", {}),
))
SPARQ_KERNELS = _registry(Op.SPARQ, (
    ("reference", f"{_K}.reference:sparq_attention", {}),
    ("cpu", f"{_K}.cpu_api:sparq_attention", {}),
    ("triton", f"{_K}.triton_api:sparq_attention", {}),
    ("torch-eager", f"{_K}.torch_eager:sparq_eager", {}),
    ("torch-eager-onek", f"{_K}.torch_eager:sparq_eager", {"K_t": None}),
))
DENSE_IMPLS = DENSE_KERNELS.names()
SPARQ_IMPLS = SPARQ_KERNELS.names()
