"""The discrete-event model of a DRAM path (SimPy).

Structure (one slice of the device: ``n_sub`` of its channels and their share of the in-flight
requests):

* an issuer walks the slice's requests in program order; a request needs one of ``max_requests``
  in-flight slots, a demand request (the first lines of a piece on CPUs: line-fill buffers)
  also one of ``max_demand`` slots, and the first request of a piece one of ``max_pieces``
  piece slots, held until the piece's demand lines are back (on CPUs: the pieces the
  out-of-order window holds at once); when a slot is missing the issuer waits for a completion;
* each request reaches its channel's controller; its bank is scored at arrival (per-bank FCFS):
  row hit -> column command when the bank allows; closed bank -> ACT (tRRD, tFAW across the
  channel) then tRCD; row conflict -> PRE after tRAS / write recovery, tRP, ACT, tRCD;
  the data is ready tCL after the column command;
* each channel's data bus is a server that transfers ready requests earliest-ready first
  (row hits of other banks overtake a waiting conflict, as FR-FCFS controllers do), one
  request per ``t_request`` (request bytes / channel rate);
* a request completes ``fabric_latency`` after its transfer (the on-chip path both ways, so
  the idle latency equals fabric + tRCD + tCL + transfer), then frees its slots.

Refresh is not scheduled: its cost is inside the channel rate (achievable fraction).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import dataclass

import numpy as np


EPS = 1e-13  # seconds: tolerance of timing comparisons (0.1 ps)


def _act_slot(acts: list, t: float, t_rrd: float, t_faw: float, now: float) -> float:
    """Earliest ACT time >= t that keeps tRRD to every other ACT of the channel and at most four
    ACTs in any tFAW window; ACTs may be placed between ones scheduled earlier (controllers
    reorder row commands). Records the ACT in `acts` (sorted)."""
    if len(acts) > 48:
        del acts[:bisect_left(acts, now - t_faw)]
    while True:
        lo = bisect_left(acts, t - t_faw)
        hi = bisect_right(acts, t + t_faw)
        window = acts[lo:hi]
        moved = False
        for a in window:
            if abs(a - t) < t_rrd - EPS:
                t = a + t_rrd
                moved = True
                break
        if moved:
            continue
        w = sorted(window + [t])
        k = w.index(t)
        for j in range(max(0, k - 4), min(k, len(w) - 5) + 1):
            if w[j + 4] - w[j] < t_faw - EPS:
                t = w[j] + t_faw
                moved = True
                break
        if not moved:
            insort(acts, t)
            return t


@dataclass
class SliceResult:
    completions: np.ndarray   # completion time of each request (seconds, sorted)
    hits: int
    misses: int               # bank closed
    conflicts: int            # another row open
    bus_busy: float           # summed over the slice's channels, seconds
    channels: int

    @property
    def requests(self) -> int:
        return len(self.completions)

    @property
    def end(self) -> float:
        return float(self.completions[-1]) if len(self.completions) else 0.0

    @property
    def row_hit_rate(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    @property
    def utilisation(self) -> float:
        return self.bus_busy / (self.channels * self.end) if self.end > 0 else 0.0


def simulate(cfg, channel, bank, row, demand, write: bool, n_sub: int, max_requests: int,
             max_demand: int, piece=None, max_pieces: int | None = None) -> SliceResult:
    """Run the requests (arrays in program order) through ``n_sub`` channels; return completions."""
    import simpy

    n = len(channel)
    if n == 0:
        return SliceResult(np.zeros(0), 0, 0, 0, 0.0, n_sub)
    env = simpy.Environment()
    channel = channel.tolist()
    bank = bank.tolist()
    row = row.tolist()
    demand = demand.tolist()
    if piece is None or max_pieces is None:
        piece = [0] * n
        max_pieces = n + 1
        first = [False] * n
        piece_left = {}
    else:
        piece = piece.tolist()
        first = [True] + [piece[i] != piece[i - 1] for i in range(1, n)]
        piece_left = {}
        for i in range(n):
            if demand[i]:
                piece_left[piece[i]] = piece_left.get(piece[i], 0) + 1
    t_req, t_cl, t_rcd, t_rp, t_ras = cfg.t_request, cfg.tCL, cfg.tRCD, cfg.tRP, cfg.tRAS
    t_rrd, t_faw = cfg.tRRD, cfg.tFAW
    t_wr = cfg.tWR if write else 0.0
    fabric = cfg.fabric_latency
    banks = cfg.banks

    open_row = [[-1] * banks for _ in range(n_sub)]
    pre_ok = [[0.0] * banks for _ in range(n_sub)]
    cas_ok = [[0.0] * banks for _ in range(n_sub)]
    acts = [[] for _ in range(n_sub)]   # per channel: sorted ACT times still able to constrain
    heaps = [[] for _ in range(n_sub)]
    waiting = [None] * n_sub          # event a sleeping channel waits on
    counts = {"hit": 0, "miss": 0, "conflict": 0, "busy": 0.0}
    releases = deque()                # (time, is_demand) in nondecreasing time order
    completions = []
    state = {"inflight": 0, "demand": 0, "pieces": 0, "issuer_wait": None}

    def arrive(i, t):
        c, b, r = channel[i], bank[i], row[i]
        orow = open_row[c]
        if orow[b] == r:
            counts["hit"] += 1
            cas = max(t, cas_ok[c][b])
        else:
            if orow[b] < 0:
                counts["miss"] += 1
                act = t
            else:
                counts["conflict"] += 1
                act = max(t, pre_ok[c][b]) + t_rp
            act = _act_slot(acts[c], act, t_rrd, t_faw, t)
            orow[b] = r
            pre_ok[c][b] = act + t_ras
            cas = act + t_rcd
        cas_ok[c][b] = cas + t_req
        if cas + t_req + t_wr > pre_ok[c][b]:
            pre_ok[c][b] = cas + t_req + t_wr
        heapq.heappush(heaps[c], (cas + t_cl, i))
        ev = waiting[c]
        if ev is not None:
            waiting[c] = None
            ev.succeed()

    def channel_proc(c):
        heap = heaps[c]
        while True:
            if not heap:
                waiting[c] = env.event()
                yield waiting[c]
                continue
            ready, i = heap[0]
            if ready > env.now:
                # Sleep at most tCL: anything arriving meanwhile is ready tCL after its arrival at
                # the earliest, so it is seen before it could have overtaken the waiting request.
                yield env.timeout(min(ready - env.now, t_cl))
                continue
            heapq.heappop(heap)
            counts["busy"] += t_req
            yield env.timeout(t_req)
            done = env.now + fabric
            releases.append((done, i))
            completions.append(done)
            ev = state["issuer_wait"]
            if ev is not None:
                state["issuer_wait"] = None
                ev.succeed()

    def issuer():
        i = 0
        while i < n:
            while releases and releases[0][0] <= env.now:
                _, j = releases.popleft()
                state["inflight"] -= 1
                if demand[j]:
                    state["demand"] -= 1
                    left = piece_left.get(piece[j])
                    if left is not None:
                        if left <= 1:
                            del piece_left[piece[j]]
                            state["pieces"] -= 1
                        else:
                            piece_left[piece[j]] = left - 1
            if (state["inflight"] < max_requests and (not demand[i] or state["demand"] < max_demand)
                    and (not first[i] or state["pieces"] < max_pieces)):
                state["inflight"] += 1
                if demand[i]:
                    state["demand"] += 1
                if first[i] and piece[i] in piece_left:
                    state["pieces"] += 1
                arrive(i, env.now)
                i += 1
                continue
            if releases:
                yield env.timeout(releases[0][0] - env.now)
            else:
                state["issuer_wait"] = env.event()
                yield state["issuer_wait"]

    for c in range(n_sub):
        env.process(channel_proc(c))
    env.process(issuer())
    env.run()
    return SliceResult(np.asarray(completions), counts["hit"], counts["miss"], counts["conflict"],
                       counts["busy"], n_sub)
