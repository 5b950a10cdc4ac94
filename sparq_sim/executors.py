"""Running independent points (sweep rows, serve-sim rates) in parallel, results in input order.

* serially, when one worker is asked for or there is one point;
* in local processes (``concurrent.futures.ProcessPoolExecutor``) by default;
* on a Dask distributed cluster when given its scheduler address (``tcp://host:8786``). Dask,
  not Ray: it is pure Python and installs from PyPI as two small wheels (the optional
  ``distributed`` extra), a local cluster starts in a second or two inside the test process,
  and its ``Client.map``/``gather`` keep the order; Ray brings a large native runtime whose
  cluster needs its own daemons.

The function and points must be picklable (module-level functions, dataclasses); every point
is computed by the same code wherever it runs, so the rows are identical either way.
"""

from __future__ import annotations

from sparq_sim.errors import UserError

CONNECT_TIMEOUT = "10s"     # how long to wait for a Dask scheduler


def default_workers() -> int:
    from sparq_sim.machine import cores
    return max(1, cores())


def parse_workers(text) -> int | None:
    if text is None:
        return None
    try:
        n = int(str(text).strip())
    except ValueError:
        raise UserError(f"bad --workers {text!r}: expected a positive integer") from None
    if n < 1:
        raise UserError(f"bad --workers {text!r}: must be at least 1")
    return n


def map_points(fn, points, *, workers: int | None = None, cluster: str | None = None,
               desc: str | None = None) -> list:
    """[fn(p) for p in points], computed serially, in local processes, or on a Dask cluster."""
    points = list(points)
    if cluster:
        return _map_dask(fn, points, cluster, desc)
    n = min(workers or default_workers(), len(points))
    if n <= 1:
        return [fn(p) for p in _bar(points, desc)]
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=n) as pool:
        return list(_bar(pool.map(fn, points), desc, total=len(points)))


def _map_dask(fn, points, address: str, desc):
    try:
        from distributed import Client
    except ImportError:
        raise UserError("--cluster needs Dask distributed: pip install 'sparq-sim[distributed]'") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except ValueError as exc:      # distributed's address parser: no port, bad scheme, ...
        raise UserError(f"bad --cluster {address!r}: {exc}") from None
    except (OSError, TimeoutError) as exc:
        raise UserError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        futures = client.map(fn, points, pure=False)
        return client.gather(list(_bar(futures, desc, total=len(points), wait=True)))
    finally:
        client.close()


def _bar(items, desc, total=None, wait=False):
    """Items, with the project's progress bar (sparq_sim.progress: stderr, terminals only)."""
    if not desc:
        return items
    from sparq_sim.progress import progress
    if wait:
        from distributed import as_completed
        items = list(items)
        for _ in progress(as_completed(items), total=total, desc=desc, unit="point"):
            pass
        return items
    return progress(items, total=total, desc=desc, unit="point")
