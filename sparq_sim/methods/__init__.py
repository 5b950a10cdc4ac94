"""Sparse-attention methods as first-class workloads, one module per method.

Each module defines ``METHOD``, an object satisfying ``base.Method``: its traffic (ideal and as
phases for any timer), its memory, its knobs and how a target compression sets them, with every
formula and its source in the module's docstring. Dense is the baseline of every speedup.
"""

from __future__ import annotations

from sparq_sim.errors import UserError
from sparq_sim.methods.base import Knob, Method, MethodName
from sparq_sim.registry import Registry

# name -> its module's METHOD (the module is the name with "-" as "_"), imported when asked for.
METHODS: Registry[Method] = Registry("method", {
    m.value: f"{__name__}.{m.value.replace('-', '_')}:METHOD" for m in MethodName})
NAMES = METHODS.names()


def get_method(name: str) -> Method:
    """The method called `name` (as typed on the command line), or UserError listing the choices."""
    return METHODS.get(name)


def parse_method_list(text: str) -> list[str]:
    """'dense,sparq,quest' -> validated names, in order, without repeats."""
    names = [n.strip().lower() for n in str(text).split(",") if n.strip()]
    if not names:
        raise UserError(f"bad --methods {text!r}: empty list")
    for n in names:
        get_method(n)
    return list(dict.fromkeys(names))


def parse_set_options(items) -> dict:
    """['quest.page=32', 'sparq.kt_format=int8'] -> {'quest': {'page': '32'}, 'sparq': {...}}."""
    out: dict = {}
    for item in items or ():
        text = str(item)
        if "=" not in text or "." not in text.split("=", 1)[0]:
            raise UserError(f"bad --set {text!r}: expected METHOD.KNOB=VALUE, e.g. quest.page=32")
        key, value = text.split("=", 1)
        method, knob = key.split(".", 1)
        m = get_method(method)
        if knob.strip() not in {k.name for k in m.knobs}:
            raise UserError(f"bad --set {text!r}: {m.name} has no knob {knob.strip()!r} (knobs: "
                            f"{', '.join(k.name for k in m.knobs) or 'none'})")
        out.setdefault(m.name, {})[knob.strip()] = value.strip()
    return out


def resolve_settings(method: Method, model, seq: int, compression: float | None, overrides: dict | None,
                     kv_bytes: int = 2) -> dict:
    """The method's settings: from the compression (or its published default), then any overrides."""
    if compression is None:
        base = method.default_settings(model, seq)
    elif method.name == MethodName.DOUBLE_SPARSITY.value and overrides and "label_format" in overrides:
        base = method.settings_for_compression(model, seq, compression, str(overrides["label_format"]).lower(),
                                               kv_bytes)
    else:
        base = method.settings_for_compression(model, seq, compression)
    merged = {**base, **(overrides or {})}
    return method.check(model, seq, merged)


__all__ = ["Knob", "Method", "MethodName", "METHODS", "NAMES", "get_method", "parse_method_list", "parse_set_options",
           "resolve_settings"]
