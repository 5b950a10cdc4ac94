"""The CPU kernels' top-k selection: exact against numpy, ties by position, on the bucketed and
the quickselect paths and on the sampled-threshold path and its fallback."""

import numpy as np
import pytest

pytest.importorskip("numba")

from sparq_sim.kernels.cpu_util import BINNED_ABOVE, kth_largest, kth_largest_binned, select_top  # noqa: E402


def expected_top(x, kk):
    """Positions of the kk largest, ties taken by lowest position, ascending."""
    order = np.lexsort((np.arange(x.size), -x.astype(np.float64)))
    return np.sort(order[:kk])


def values(kind, n, rng):
    if kind == "normal":
        return rng.standard_normal(n).astype(np.float32)
    if kind == "ties":
        return rng.integers(-2, 3, n).astype(np.float32)
    if kind == "tiny":
        return (rng.standard_normal(n) * 1e-30).astype(np.float32)
    return np.concatenate([rng.standard_normal(n - 1), [1e30]]).astype(np.float32)   # one outlier


@pytest.mark.parametrize("kind", ["normal", "ties", "tiny", "outlier"])
def test_kth_largest_binned_is_exact(kind):
    rng = np.random.default_rng(11)
    for _ in range(60):
        n = int(rng.integers(BINNED_ABOVE, 6000))
        x = values(kind, n, rng)
        kk = int(rng.integers(1, n + 1))
        want = np.sort(x)[::-1][kk - 1]
        assert kth_largest_binned(x.copy(), n, kk) == want
        assert kth_largest(x.copy(), n, kk) == want


@pytest.mark.parametrize("n", [300, 5000, 32768])
@pytest.mark.parametrize("kind", ["normal", "ties", "outlier"])
def test_select_top_matches_numpy(n, kind):
    rng = np.random.default_rng(n)
    for kk in (1, 7, n // 16, n // 3, n):
        x = values(kind, n, rng)
        out = np.full(kk, -1, np.int32)
        select_top(x, n, kk, out, np.zeros(n, np.int32), np.zeros(n, np.float32))
        np.testing.assert_array_equal(out, expected_top(x, kk))
