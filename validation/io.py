"""Atomic file writes for the validation suite: thin wrappers over sparq_sim.outputs."""

from __future__ import annotations

from pathlib import Path

from sparq_sim.errors import UserError
from sparq_sim.outputs import atomic_write


def _check_folder(path) -> Path:
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: folder {parent} does not exist")
    return p


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_write(_check_folder(path), binary=True) as f:
        f.write(data)


def atomic_write_text(path, text: str) -> None:
    with atomic_write(_check_folder(path)) as f:
        f.write(text)
