"""Named choices: the fixed families of names (enums) and the open ones (registries).

A fixed family (methods, K storage modes; access patterns and bounds live with their own
modules) is a ``Choice``: a ``str`` enum, so a member compares equal to, hashes as, prints as
and serialises (JSON, CSV) as its value, and code written against the plain strings keeps
working while new code names the member.

An open family (implementation models, timers, subcommands, kernels, methods) is a
``Registry``: a name (as typed on the command line) mapped to an entry imported only when it is
first asked for, so a light command (``predict``) loads no module it does not use. Entries are
given as ``"package.module:attribute"`` strings, or found by scanning a package for modules
that define an attribute. An unknown name is a ``UserError`` listing the known ones.
"""

from __future__ import annotations

import importlib
import pkgutil
from enum import Enum
from types import ModuleType
from typing import Callable, Generic, Iterator, TypeVar

from sparq_sim.errors import UserError

T = TypeVar("T")


class Choice(str, Enum):
    """Base of the project's name families: the member is its string value everywhere."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class MethodName(Choice):
    """The sparse-attention methods, as typed on the command line (``--method``)."""

    DENSE = "dense"
    SPARQ = "sparq"
    FLEXGEN = "flexgen"
    H2O = "h2o"
    STREAMINGLLM = "streamingllm"
    QUEST = "quest"
    DOUBLE_SPARSITY = "double-sparsity"
    LOKI = "loki"


class StoreK(Choice):
    """How the key cache is stored (``--store-k``)."""

    ONCE = "once"     # position-major K only: SparQ's step 1 picks r scattered components per row
    TWICE = "twice"   # plus a component-major copy K_t: step 1 streams r contiguous runs


def load(target: str):
    """The object a ``"package.module:attribute"`` string names (the module when no attribute)."""
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def scan(package: str, attribute: str, skip: tuple[str, ...] = ()) -> Iterator[tuple[ModuleType, object]]:
    """(module, its `attribute`) for every public module of `package` that defines it."""
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name in skip:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        value = getattr(module, attribute, None)
        if value is not None:
            yield module, value


class Registry(Generic[T]):
    """Name -> entry, each loaded on first use from a ``"module:attribute"`` string.

    `what` names the kind of choice in error messages ("implementation", "timing"); `normalise`
    turns a name as given into a registered one (stripped and lower-cased unless told otherwise);
    `unknown` is the error message's template.
    An entry whose own module (or a package above it) is not installed is a UserError, a choice
    this installation lacks; a missing module further down is a bug and propagates.
    """

    def __init__(self, what: str, targets: dict[str, str] | None = None,
                 normalise: Callable[[object], str] = lambda name: str(name).strip().lower(),
                 unknown: str = "unknown {what} {name!r}: choose from {choices}"):
        self.what = what
        self._targets: dict[str, str] = dict(targets or {})
        self._loaded: dict[str, T] = {}
        self._normalise = normalise
        self._unknown = unknown

    def add(self, name: str, entry: T | str) -> None:
        """Register `entry` (an object, or a "module:attribute" string loaded when asked for)."""
        if isinstance(entry, str):
            self._targets[name] = entry
            self._loaded.pop(name, None)
        else:
            self._targets.pop(name, None)
            self._loaded[name] = entry

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order (for help texts and error messages)."""
        return tuple(dict.fromkeys([*self._targets, *self._loaded]))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name) -> bool:
        return self._normalise(name) in self.names()

    def key(self, name) -> str:
        """The registered name `name` stands for, or UserError listing the known ones."""
        key = self._normalise(name)
        if key not in self.names():
            raise UserError(self._unknown.format(what=self.what, name=name, choices=", ".join(self.names())))
        return key

    def get(self, name) -> T:
        """The entry called `name`, imported on first use."""
        key = self.key(name)
        if key not in self._loaded:
            target = self._targets[key]
            try:
                self._loaded[key] = load(target)
            except ModuleNotFoundError as exc:
                module_name = target.partition(":")[0]
                if exc.name and module_name.startswith(exc.name):
                    raise UserError(f"{self.what} {key!r} is not available in this installation") from None
                raise
        return self._loaded[key]

    def items(self) -> list[tuple[str, T]]:
        """Every (name, entry), each loaded."""
        return [(name, self.get(name)) for name in self.names()]
