"""Error statistics of predicted against measured times: absolute percentage errors, their
median and 90th percentile, overall and grouped (per kernel, per device)."""

from __future__ import annotations

import math

import numpy as np


def abs_pct_error(predicted, measured):
    """|predicted - measured| / measured, in percent (numbers or numpy arrays, element-wise)."""
    return abs(predicted - measured) / measured * 100.0


def summary(errors) -> dict:
    """n, median and 90th-percentile absolute percentage error (linear interpolation, numpy's default)."""
    e = np.asarray(list(errors), dtype=float)
    if e.size == 0:
        return {"n": 0, "median_abs_pct_error": math.nan, "p90_abs_pct_error": math.nan}
    return {"n": int(e.size), "median_abs_pct_error": float(np.median(e)),
            "p90_abs_pct_error": float(np.percentile(e, 90))}


def grouped(keys, errors) -> dict:
    """summary() of the errors of each key, keys sorted."""
    groups: dict = {}
    for key, err in zip(keys, errors):
        groups.setdefault(key, []).append(err)
    return {key: summary(groups[key]) for key in sorted(groups)}
