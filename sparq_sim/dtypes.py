"""Storage dtypes of weights and KV cache: names users type and bytes per element."""

from __future__ import annotations

from sparq_sim.errors import UserError

BYTES_PER_ELEMENT = {"float32": 4, "float16": 2, "bfloat16": 2, "float8": 1, "int8": 1}
DEFAULT_DTYPE = "float16"   # of weights and KV cache, where none is given
ALIASES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16",
           "fp8": "float8", "float8_e4m3": "float8", "e4m3": "float8", "i8": "int8"}


def canonical(name: str) -> str:
    """Return the canonical dtype name, or raise UserError naming the choices."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in BYTES_PER_ELEMENT:
        raise UserError(f"unknown dtype {name!r}: choose from {', '.join(BYTES_PER_ELEMENT)}")
    return key


def parse(text: str, what: str = "dtype") -> str:
    """`canonical` in the form of a flag parser (the message names the dtype and the choices)."""
    return canonical(text)


def nbytes(name: str) -> int:
    """Bytes per element of a dtype name."""
    return BYTES_PER_ELEMENT[canonical(name)]
