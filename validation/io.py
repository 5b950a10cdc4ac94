"""File writes of the validation suite: the project's one atomic text writer, from
sparq_sim.outputs (the calibration package writes its files with the same function)."""

from __future__ import annotations

from sparq_sim.outputs import write_text_atomic as atomic_write_text

__all__ = ["atomic_write_text"]
