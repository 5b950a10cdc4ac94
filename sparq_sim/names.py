"""Families of names users type and outputs carry: methods and K storage modes.

Each family is a ``Choice``: a ``str`` enum, so a member compares equal to, hashes as, prints as
and serialises (JSON, CSV) as its value, and code written against the plain strings keeps
working while new code names the member.
"""

from __future__ import annotations

from enum import Enum


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
