"""Reading the project's TOML files (hardware, calibration, DRAM standards) with one error style:
a bad file is a UserError naming the file, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from sparq_sim.errors import UserError


def parse(text: str, what: str) -> dict:
    """TOML text -> dict; `what` names the source in the error ("hardware file x.toml")."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{what}: not valid TOML: {exc}") from None


def read(path: str | Path, what: str) -> dict:
    """The TOML file at `path`; `what` says what kind of file it is ("hardware file")."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} {path} not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path}: not valid TOML: {exc}") from None
    return parse(text, f"{what} {path}")
