"""Implementation models: how a given SparQ/dense implementation turns a workload into phases.

Each module here defines ``IMPLEMENTATION``, an object with ``name``, ``description`` and
``attention_phases(workload, method, device=None)`` / ``other_phases(workload, device=None)`` returning lists of
``sparq_sim.traffic.Phase`` for the whole decoding step (all layers, whole batch). The
registry finds them by scanning this package, so adding a model is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil

from sparq_sim.errors import UserError
from sparq_sim.implementations.base import ImplementationModel

DEFAULT_IMPLEMENTATION = "ideal"


def _modules():
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            yield info.name


def all_implementations() -> dict:
    """Name -> implementation model, for every module in this package."""
    found = {}
    for module_name in _modules():
        module = importlib.import_module(f"{__name__}.{module_name}")
        impl = getattr(module, "IMPLEMENTATION", None)
        if impl is not None:
            if not isinstance(impl, ImplementationModel):
                raise TypeError(f"{module.__name__}.IMPLEMENTATION is not an ImplementationModel")
            found[impl.name] = impl
    return dict(sorted(found.items()))


def get_implementation(name: str):
    """The implementation model called `name`, or UserError listing the choices."""
    impls = all_implementations()
    key = str(name).strip().lower()
    if key not in impls:
        raise UserError(f"unknown implementation {name!r}: choose from {', '.join(impls)}")
    return impls[key]
