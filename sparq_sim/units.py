"""Parsing of the numbers users type: sequence lengths (32k), fractions (1/8), lists."""

from __future__ import annotations

import re
from fractions import Fraction

from sparq_sim.errors import UserError

_SIZE = re.compile(r"^\s*(\d+)\s*([kKmM]?)\s*$")
_SUFFIX = {"": 1, "k": 1024, "m": 1024 * 1024}
# The longest sequence any command takes: 1024m = 2^30 tokens, far beyond any model's context,
# and small enough that every count the models and the simulator form stays a 64-bit integer.
MAX_SEQ = 1 << 30


def parse_seq(text: str | int, what: str = "sequence length") -> int:
    """Parse '4096', '32k' or '1m' (k and m are powers of two: 32k = 32768)."""
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise UserError(f"bad {what} {text!r}: expected an integer with optional suffix k or m, e.g. 32k")
        value = int(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if value < 1:
        raise UserError(f"bad {what} {text!r}: must be at least 1")
    if value > MAX_SEQ:
        raise UserError(f"bad {what} {text!r}: must be at most 1024m ({MAX_SEQ} tokens)")
    return value


def parse_fraction(text: str | float, what: str = "compression") -> float:
    """Parse '1/8', '0.125' or 0.125 into a float in (0, 1]."""
    try:
        value = float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError, OverflowError):
        raise UserError(f"bad {what} {text!r}: expected a fraction such as 1/8 or 0.125") from None
    if not 0 < value <= 1:
        raise UserError(f"bad {what} {text!r}: must be in (0, 1]")
    return value


def parse_int(text: str | int, what: str) -> int:
    """Parse a plain integer (its range is the caller's to check)."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise UserError(f"bad {what} {text!r}: expected an integer") from None


def parse_positive_int(text: str | int, what: str, maximum: int | None = None) -> int:
    """Parse a plain integer that must be at least 1 (and at most `maximum` where given)."""
    value = parse_int(text, what)
    if value < 1:
        raise UserError(f"bad {what} {text!r}: must be at least 1")
    if maximum is not None and value > maximum:
        raise UserError(f"bad {what} {text!r}: must be at most {maximum}")
    return value


def parse_number(text: str, what: str, low: float, high: float, example: str) -> float:
    """Parse a finite float in (low, high]: nan, inf and overflowing literals are refused."""
    import math
    try:
        value = float(str(text).strip())
    except (ValueError, OverflowError):
        raise UserError(f"bad {what} {text!r}: expected a number such as {example}") from None
    if not math.isfinite(value):
        raise UserError(f"bad {what} {text!r}: must be a finite number")
    if not low < value <= high:
        raise UserError(f"bad {what} {text!r}: must be above {low:g} and at most {high:g}")
    return value


def parse_list(text: str, parse, what: str) -> list:
    """Parse a comma-separated list with the given element parser."""
    items = [item for item in str(text).split(",") if item.strip()]
    if not items:
        raise UserError(f"bad {what} {text!r}: empty list")
    return [parse(item.strip(), what) for item in items]


def format_bytes(n: float) -> str:
    """Human-readable bytes with binary-free decimal units (GB = 1e9), as datasheets use."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def format_seconds(t: float) -> str:
    """Human-readable time: s, ms or us."""
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*(us|ms|s|min)?\s*$")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, None: 1.0}


def parse_duration(text: str | float, what: str) -> float:
    """Parse '50ms', '2s', '300us', '10min' or a plain number of seconds; must be positive."""
    match = _DURATION.match(str(text))
    if not match:
        raise UserError(f"bad {what} {text!r}: expected a time such as 50ms, 2s or 0.05")
    number = str(text).strip()
    unit = match.group(2)
    value = float(number[:len(number) - len(unit)] if unit else number) * _DURATION_UNITS[unit]
    if value <= 0:
        raise UserError(f"bad {what} {text!r}: must be positive")
    return value
