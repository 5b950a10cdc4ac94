"""Command-line flags declared once, on the fields of the config dataclasses.

A field's metadata (``field(metadata=flag(...))``) gives its flag: the name (default: the
field's name, ``--kv-dtype`` for ``kv_dtype``, ``--no-reallocate`` for a boolean that is on by
default), the function that parses the typed text, the help and, where the command line's
default is not the field's own, that default (None: "work it out", as r and k from the
compression). `add_flags` puts a dataclass's flags on an argparse parser or group; `parsed`
reads them back from the namespace as a dict of field values.

argparse keeps every value as the text typed; the parse functions (those of sparq_sim.units
and the like) raise UserError naming the flag, so a bad value is one line and exit 2 in the
project's own words, not argparse's. This module imports no argparse and no command.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields, replace
from typing import Any, Callable

_KEY = "flag"
FROM_FIELD = type("FromField", (), {"__repr__": lambda self: "FROM_FIELD"})()   # Flag.default: the field's own


@dataclass(frozen=True)
class Flag:
    """The command-line side of one config field."""

    name: str | None = None                          # "--kv-dtype"; None: from the field's name
    parse: Callable[[Any, str], Any] | None = None   # parse(text, flag name) -> value; None: as typed
    help: str | Callable[[], str] = ""               # "{default}" is filled in; a callable is asked
                                                     # when the parser is built
    default: Any = FROM_FIELD                        # the command line's default
    choices: tuple | None = None
    metavar: str | None = None
    dest: str | None = None                          # None: argparse's own, from the name
    switch: str | None = None                        # "on": a store_true switch; "off": store_false
                                                     # (a boolean field that is True by default)

    def value(self, raw):
        """The field value of what argparse holds (None stays None: not given, no default)."""
        if raw is None or self.parse is None:
            return raw
        return self.parse(raw, self.name)


def flag(name: str | None = None, parse=None, help="", **rest) -> dict:
    """Field metadata that gives the field a command-line flag."""
    return {_KEY: Flag(name, parse, help, **rest)}


def flags(cls, names=None) -> dict[str, Flag]:
    """Field name -> its Flag, complete (name, dest and default filled in), in the order of `names`
    where given, else of the fields."""
    out = {}
    for f in fields(cls):
        spec = f.metadata.get(_KEY)
        if spec is None or (names is not None and f.name not in names):
            continue
        default = spec.default
        if default is FROM_FIELD:
            default = f.default if f.default is not MISSING else None
        switch = spec.switch or ("off" if default is True else "on" if default is False else None)
        name = spec.name or ("--no-" if switch == "off" else "--") + f.name.replace("_", "-")
        dest = spec.dest or (f.name if switch == "off" else name.lstrip("-").replace("-", "_"))
        out[f.name] = replace(spec, name=name, default=default, dest=dest, switch=switch)
    if names is None:
        return out
    if set(names) - set(out):
        raise KeyError(f"{cls.__name__} has no flag for {sorted(set(names) - set(out))}")
    return {name: out[name] for name in names}


def add_flags(parser, cls, names=None, *, required=()) -> None:
    """Add the flags of `cls` (only the fields in `names` where given) to an argparse parser or
    group; the fields in `required` must be given."""
    for field_name, spec in flags(cls, names).items():
        _add(parser, spec, field_name in required)


def add_flag(parser, *specs: Flag, required: bool = False) -> None:
    """Add complete Flags (as `flags` returns them, or declared whole with a name) to a parser or group."""
    for spec in specs:
        _add(parser, spec, required)


def _add(parser, spec: Flag, required: bool) -> None:
    text = (spec.help() if callable(spec.help) else spec.help).replace("{default}", str(spec.default))
    if spec.switch:
        action = "store_true" if spec.switch == "on" else "store_false"
        parser.add_argument(spec.name, dest=spec.dest, action=action, help=text)
        return
    extra = {"choices": spec.choices} if spec.choices else {}
    if spec.metavar:
        extra["metavar"] = spec.metavar
    if required:
        extra["required"] = True
    else:
        extra["default"] = None if spec.default in (None, FROM_FIELD) else str(spec.default)   # text, as typed
    parser.add_argument(spec.name, dest=spec.dest, help=text, **extra)


def parsed(cls, args, names=None) -> dict:
    """Field name -> parsed value, for the flags of `cls` that the namespace `args` holds."""
    return {field_name: spec.value(getattr(args, spec.dest))
            for field_name, spec in flags(cls, names).items() if hasattr(args, spec.dest)}
