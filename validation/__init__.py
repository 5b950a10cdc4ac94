"""The validation suite: predicted against measured (see docs/validation.md).

``published(name)`` is the path of a published measurement file shipped in ``data/``
(its source and licence are in data/README.md), e.g. ``published("a10g")``.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
PUBLISHED = {"a10g": "sparq-microbench-a10g.csv", "a100-40gb": "sparq-microbench-a100-40gb.csv"}


def published(device: str) -> Path:
    """The shipped published microbenchmark file of `device` (a key of ``PUBLISHED``)."""
    return DATA / PUBLISHED[device]
