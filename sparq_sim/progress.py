"""Progress bars for the steps that take more than a couple of seconds.

tqdm (a small, pure-Python, widely used library) draws them on stderr, so stdout stays the
command's answer; a bar appears only after ``DELAY_S`` seconds, and never when stderr is not a
terminal (pipes, CI logs, tests). tqdm is imported inside the function: the prediction path
loads it only when a long step starts.
"""

from __future__ import annotations

import sys

DELAY_S = 2.0   # steps shorter than this show no bar at all


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it"):
    """tqdm over `iterable` (or a manual bar of `total` steps: call ``.update(n)``), on stderr,
    off when stderr is not a TTY; the bar is removed when done."""
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, delay=DELAY_S, leave=False,
                dynamic_ncols=True, disable=not _is_tty())


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
