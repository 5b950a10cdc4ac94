"""Implementation models: how a given SparQ/dense implementation turns a workload into phases.

Each module here defines ``IMPLEMENTATION``, an object satisfying ``base.ImplementationModel``
(``name``, ``description``, ``attention_phases(workload, method, device=None)`` and
``other_phases(workload, device=None)`` returning lists of ``sparq_sim.traffic.Phase`` for the
whole decoding step: all layers, whole batch). The registry finds them by scanning this
package, so adding a model is adding a file.
"""

from __future__ import annotations

from functools import lru_cache

from sparq_sim.implementations.base import ImplementationModel
from sparq_sim.registry import Registry, scan

DEFAULT_IMPLEMENTATION = "ideal"
# predict's default: per kind of device, the implementation closest to what users run whose
# model is checked against published end-to-end runs (gpt-fast: compiled PyTorch with CUDA
# graphs, its kernels calibrated on the A10G and A100 rows; llama.cpp: the fork's CPU setup)
BEST_ESTIMATE = {"gpu": "gpt-fast", "cpu": "llama.cpp"}
BOUND_TIMINGS = ("roofline", "sim")   # timings that ask for the ideal bound when no model is named
BEST_ESTIMATE_HELP = (f"{BEST_ESTIMATE['gpu']} on a GPU, {BEST_ESTIMATE['cpu']} on a CPU; "
                      f"{DEFAULT_IMPLEMENTATION} with --timing {' or '.join(BOUND_TIMINGS)}")


def best_estimate(device, timing: str | None = None) -> str:
    """The implementation predict estimates with on `device` unless --impl names one: the best
    estimate of its kind, or the ideal bound where `timing` asks for a roofline or the simulator."""
    if timing in BOUND_TIMINGS:
        return DEFAULT_IMPLEMENTATION
    return BEST_ESTIMATE.get(device.kind, DEFAULT_IMPLEMENTATION)


@lru_cache(maxsize=None)
def registry() -> Registry[ImplementationModel]:
    """Every model of this package, by its ``name``, in name order (scanned once)."""
    found = {}
    for module, impl in scan(__name__, "IMPLEMENTATION", skip=("base",)):
        if not isinstance(impl, ImplementationModel):
            raise TypeError(f"{module.__name__}.IMPLEMENTATION is not an ImplementationModel")
        found[impl.name] = impl
    models: Registry[ImplementationModel] = Registry("implementation")
    for name in sorted(found):
        models.add(name, found[name])
    return models


def all_implementations() -> dict:
    """Name -> implementation model, for every module in this package."""
    return dict(registry().items())


def get_implementation(name: str) -> ImplementationModel:
    """The implementation model called `name`, or UserError listing the choices."""
    return registry().get(name)


def resolve(implementation: str | ImplementationModel) -> ImplementationModel:
    """A model given by name (as typed on the command line) or as the model itself."""
    if not isinstance(implementation, str) and isinstance(implementation, ImplementationModel):
        return implementation
    return get_implementation(implementation)
