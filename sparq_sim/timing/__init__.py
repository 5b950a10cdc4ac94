"""Ways of timing phases: analytic roofline, the DRAM simulator, calibrated efficiencies.

A timer is built from a Device and has ``time_phases(phases) -> list[PhaseTime]``. All timers
time the same phases, so their answers can be compared phase by phase.
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

from sparq_sim.errors import UserError
from sparq_sim.timing.result import PhaseTime

@runtime_checkable
class Timer(Protocol):
    """Turns phases into times on one device; every timer times the same phases."""

    name: str
    device: object

    def time_phases(self, phases) -> list[PhaseTime]: ...


# name -> "module:Class"; imported only when asked for, so the default path stays light.
TIMERS = {
    "roofline": "sparq_sim.timing.roofline:RooflineTimer",
    "sim": "sparq_sim.simulator.timer:SimulatedTimer",
    "calibrated": "sparq_sim.calibration.timer:CalibratedTimer",
}
DEFAULT_TIMER = "roofline"


def get_timer(name: str, device, **options):
    """Build the timer called `name` for `device`."""
    key = str(name).strip().lower()
    if key not in TIMERS:
        raise UserError(f"unknown timing {name!r}: choose from {', '.join(TIMERS)}")
    module_name, class_name = TIMERS[key].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UserError(f"timing {key!r} is not available in this installation") from None
        raise
    return getattr(module, class_name)(device, **options)


def timer_for(impl, timing: str | None, device):
    """The timer an implementation model is timed with: `timing`, else the model's own
    (``default_timing``), else the roofline; a model replayed as one CUDA graph (``cuda_graph``)
    gets the calibrated timer in graph mode."""
    name = str(timing or getattr(impl, "default_timing", DEFAULT_TIMER)).strip().lower()
    options = {"cuda_graph": True} if name == "calibrated" and getattr(impl, "cuda_graph", False) else {}
    return get_timer(name, device, **options)


__all__ = ["PhaseTime", "Timer", "TIMERS", "DEFAULT_TIMER", "get_timer", "timer_for"]
