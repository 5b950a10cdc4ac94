"""One schema for the project's data files (hardware, DRAM standards, calibration): typed fields
with units and plausible ranges, unknown keys rejected by name, one reader and one TOML writer.

A file is described by a :class:`Section` of fields. Every number of a device is a
:class:`Figure`, written ``{ value = ..., basis = "...", source = "..." }`` where the basis says
how it is known (:class:`Basis`). Ranges are plausible bounds for any device, so a slip of a few
orders of magnitude (or inf, nan) is caught. A bad file is one :class:`UserError` naming the file
and the field, never a traceback. Standard library only: the prediction path reads hardware files.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Callable

from sparq_sim.errors import UserError


class Basis(StrEnum):
    """How a number is known."""

    DATASHEET = "datasheet"
    MEASURED = "measured"
    DERIVED = "derived"        # computed from other documented figures
    FITTED = "fitted"          # from measurements, by sparq-sim's calibration
    ASSUMED = "assumed"        # a typical figure, to be replaced by a measurement


BASES = tuple(b.value for b in Basis)


@dataclass(frozen=True)
class Figure:
    """A number with where it comes from."""

    value: float
    basis: Basis
    source: str

    def __post_init__(self):
        object.__setattr__(self, "basis", Basis(self.basis))

    def to_dict(self) -> dict:
        return {"value": self.value, "basis": self.basis.value, "source": self.source}


class Where:
    """The file being read ("hardware file x.toml") and the dotted path of a field in it."""

    __slots__ = ("what", "path")

    def __init__(self, what: str, path: str = ""):
        self.what, self.path = what, path

    def child(self, key: str) -> "Where":
        return Where(self.what, f"{self.path}.{key}" if self.path else key)

    def error(self, problem: str) -> UserError:
        """`problem` follows the field name: "is missing", ": value must be ...", "must be a table"."""
        sep = "" if problem.startswith(":") else " "
        return UserError(f"{self.what}: field {self.path}{sep}{problem}")


class Field:
    """One key of a section: how its value is checked and what it becomes. (Plain classes, not
    dataclasses: the prediction path builds the hardware schema on import, and cheaply.)"""

    __slots__ = ("required",)

    def __init__(self, required: bool = True):
        self.required = required

    def read(self, value, where: Where):  # pragma: no cover - interface
        raise NotImplementedError


def _range_text(low, high, low_inclusive) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'at least' if low_inclusive else 'above'} {low:g}")
    if high is not None:
        parts.append(f"at most {high:g}")
    return " and ".join(parts)


def check_number(value, where: Where, low=None, high=None, *, low_inclusive=False, whole=False,
                 power_of_two=False, label="value") -> float:
    """A finite int or float inside the range; UserError naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(f": {label} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise where.error(f": {label} must be a finite number, got {value!r}")
    below = low is not None and (value < low if low_inclusive else not value > low)
    if below or (high is not None and value > high):
        raise where.error(f": {label} must be {_range_text(low, high, low_inclusive)}, got {value!r}")
    if (whole or power_of_two) and value != int(value):
        raise where.error(f": {label} must be a whole number, got {value!r}")
    if power_of_two and int(value) & (int(value) - 1):
        raise where.error(f": {label} must be a power of two, got {value!r}")
    return float(value)


class FigureField(Field):
    """A ``{ value, basis, source }`` figure in `unit`, its value in (low, high] ([low, high] with
    low_inclusive); None bounds are open."""

    __slots__ = ("unit", "low", "high", "low_inclusive", "whole", "power_of_two", "doc")

    def __init__(self, unit: str, low: float | None = None, high: float | None = None, *, low_inclusive=False,
                 whole=False, power_of_two=False, required=True, doc: str = ""):
        super().__init__(required)
        self.unit, self.low, self.high, self.doc = unit, low, high, doc
        self.low_inclusive, self.whole, self.power_of_two = low_inclusive, whole, power_of_two

    def read(self, table, where: Where) -> Figure:
        if not isinstance(table, dict):
            raise where.error(": expected a table { value = ..., basis = ..., source = ... }")
        value = check_number(table.get("value"), where, self.low, self.high, low_inclusive=self.low_inclusive,
                             whole=self.whole, power_of_two=self.power_of_two)
        basis = table.get("basis")
        if basis not in BASES:
            raise where.error(f": basis must be one of {', '.join(BASES)}, got {basis!r}")
        source = table.get("source")
        if not isinstance(source, str) or not source.strip():
            raise where.error(": source is missing: every number needs a source")
        extra = set(table) - {"value", "basis", "source"}
        if extra:
            raise where.error(f": unknown keys {', '.join(sorted(extra))}")
        return Figure(value, Basis(basis), source)


class Number(Field):
    """A bare number (no source: a figure the file's own metadata explains)."""

    __slots__ = ("unit", "low", "high")

    def __init__(self, unit: str, low: float | None = None, high: float | None = None, *, required=True):
        super().__init__(required)
        self.unit, self.low, self.high = unit, low, high

    def read(self, value, where: Where) -> float:
        return check_number(value, where, self.low, self.high)


class Text(Field):
    """A string; `choices` limits it, `empty` allows ""."""

    __slots__ = ("choices", "empty")

    def __init__(self, choices: tuple[str, ...] = (), *, empty=False, required=True):
        super().__init__(required)
        self.choices, self.empty = choices, empty

    def read(self, value, where: Where) -> str:
        if not isinstance(value, str) or not (self.empty or value.strip()):
            raise where.error("must be a string" if self.empty else "must be a non-empty string")
        value = value.strip()
        if self.choices and value not in self.choices:
            raise where.error(f"must be one of {', '.join(self.choices)}, got {value!r}")
        return value


class Flag(Field):
    __slots__ = ()

    def read(self, value, where: Where) -> bool:
        if not isinstance(value, bool):
            raise where.error("must be true or false")
        return value


class Strings(Field):
    __slots__ = ()

    def read(self, value, where: Where) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise where.error("must be a list of strings")
        return tuple(value)


class Scalar(Field):
    """A free-form string, number or boolean (metadata)."""

    __slots__ = ()

    def read(self, value, where: Where):
        if not isinstance(value, (str, int, float, bool)):
            raise where.error("must be a string, a number or a boolean")
        return value


def _table(value, where: Where) -> dict:
    if not isinstance(value, dict):
        raise where.error("must be a table")
    return value


class Table(Field):
    """A table whose keys are names (dtypes, constants, technologies), each value read by `of`.
    `keys` limits the names (an unknown one is an error naming the `what`); `needs` must be there."""

    __slots__ = ("of", "keys", "what", "needs")

    def __init__(self, of: Field, *, keys: tuple[str, ...] = (), what: str = "key", needs: tuple[str, ...] = (),
                 required=True):
        super().__init__(required)
        self.of, self.keys, self.what, self.needs = of, keys, what, needs

    def read(self, value, where: Where) -> dict:
        out = {}
        for key, item in _table(value, where).items():
            if self.keys and key not in self.keys:
                raise where.child(key).error(f": unknown {self.what} (choose from {', '.join(self.keys)})")
            out[key] = self.of.read(item, where.child(key))
        for key in self.needs:
            if key not in out:
                raise where.child(key).error("is missing")
        return out


class Section(Field):
    """A table of named fields; a key the section does not know is an error naming it. `into`
    (a class taking the fields as keywords, absent optional ones as None) types the result."""

    __slots__ = ("fields", "into")

    def __init__(self, fields: dict[str, Field], *, into: Callable[..., Any] | None = None, required=True):
        super().__init__(required)
        self.fields, self.into = fields, into

    def read(self, value, where: Where):
        table = _table(value, where)
        unknown = sorted(set(table) - set(self.fields))
        if unknown:
            place = f"section [{where.path}]" if where.path else "the top level"
            raise UserError(f"{where.what}: unknown field {unknown[0]!r} in {place} "
                            f"(known: {', '.join(sorted(self.fields))})")
        out = {}
        for key, spec in self.fields.items():
            if key in table:
                out[key] = spec.read(table[key], where.child(key))
            elif spec.required:
                raise where.child(key).error("is missing")
            else:
                out[key] = None
        return self.into(**out) if self.into else out


def read(spec: Field, data, what: str):
    """Check parsed TOML `data` against `spec` (the whole file); `what` names the file in errors."""
    return spec.read(data, Where(what))


# --------------------------------------------------------------------------- writing

_BARE_KEY = r"[A-Za-z0-9_-]+"    # compiled on first write (re caches it), not on every hardware load


def _key(k: str) -> str:
    return k if re.fullmatch(_BARE_KEY, k) else _string(k)


def _string(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", out) + '"'


def _inline(v) -> bool:
    return isinstance(v, Figure) or (isinstance(v, dict) and "value" in v) or not isinstance(v, dict)


def value_text(v) -> str:
    """One TOML value: numbers exactly (repr), strings escaped, figures as inline tables."""
    if isinstance(v, Figure):
        v = v.to_dict()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return repr(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML files hold finite numbers only, got {v!r}")
        return repr(v)
    if isinstance(v, str):
        return _string(str(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {value_text(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write a {type(v).__name__} to TOML")


def dumps(data: dict, comment: str = "") -> str:
    """TOML text of `data`: top-level values, then one [section] per table (nested ones as
    [a.b]); figures (and tables with a "value") are inline tables. `comment` heads the file."""
    lines = [f"# {line}" if line else "#" for line in comment.splitlines()]

    def emit(name: str, table: dict) -> None:
        if name:
            lines.extend(["", f"[{name}]"])
        nested = []
        for k, v in table.items():
            if _inline(v):
                lines.append(f"{_key(k)} = {value_text(v)}")
            else:
                nested.append((f"{name}.{_key(k)}" if name else _key(k), v))
        for n, t in nested:
            emit(n, t)

    emit("", data)
    return "\n".join(lines) + "\n"
