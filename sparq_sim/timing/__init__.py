"""Ways of timing phases: analytic roofline, the DRAM simulator, calibrated efficiencies.

A timer is built from a Device and has ``time_phases(phases) -> list[PhaseTime]``. All timers
time the same phases, so their answers can be compared phase by phase.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sparq_sim.registry import Registry
from sparq_sim.timing.result import PhaseTime


@runtime_checkable
class Timer(Protocol):
    """Turns phases into times on one device; every timer times the same phases."""

    name: str
    device: object

    def time_phases(self, phases) -> list[PhaseTime]: ...


# name -> "module:Class"; imported only when asked for, so the default path stays light.
TIMERS: Registry[type] = Registry("timing", {
    "roofline": "sparq_sim.timing.roofline:RooflineTimer",
    "sim": "sparq_sim.simulator.timer:SimulatedTimer",
    "calibrated": "sparq_sim.calibration.timer:CalibratedTimer",
})
DEFAULT_TIMER = "roofline"


def get_timer(name: str, device, **options) -> Timer:
    """Build the timer called `name` for `device`."""
    timer = TIMERS.get(name)(device, **options)
    if not isinstance(timer, Timer):
        raise TypeError(f"timing {TIMERS.key(name)!r} does not build a Timer")
    return timer


def timer_for(impl, timing: str | None, device):
    """The timer an implementation model is timed with: `timing`, else the model's own
    (``default_timing``), else the roofline; a model replayed as one CUDA graph (``cuda_graph``)
    gets the calibrated timer in graph mode."""
    name = str(timing or getattr(impl, "default_timing", DEFAULT_TIMER)).strip().lower()
    options = {"cuda_graph": True} if name == "calibrated" and getattr(impl, "cuda_graph", False) else {}
    return get_timer(name, device, **options)


__all__ = ["PhaseTime", "Timer", "TIMERS", "DEFAULT_TIMER", "get_timer", "timer_for"]
