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
from dataclasses import dataclass, field

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


@dataclass
class _Requests:
    """The slice's requests in program order, as lists (faster to index than arrays in the loop)."""

    channel: list
    bank: list
    row: list
    demand: list              # a demand request (holds a demand slot)
    piece: list               # the piece each request belongs to
    first: list               # the first request of its piece (takes a piece slot)
    piece_left: dict          # piece -> its demand requests not yet completed (pieces with any)

    @classmethod
    def of(cls, channel, bank, row, demand, piece) -> "_Requests":
        n = len(channel)
        demand = demand.tolist()
        if piece is None:
            return cls(channel.tolist(), bank.tolist(), row.tolist(), demand, [0] * n, [False] * n, {})
        piece = piece.tolist()
        first = [True] + [piece[i] != piece[i - 1] for i in range(1, n)]
        left: dict = {}
        for i in range(n):
            if demand[i]:
                left[piece[i]] = left.get(piece[i], 0) + 1
        return cls(channel.tolist(), bank.tolist(), row.tolist(), demand, piece, first, left)


@dataclass(frozen=True)
class _Limits:
    """In-flight slots of the slice: requests, demand requests, pieces."""

    requests: int
    demand: int
    pieces: int


@dataclass
class _Channel:
    """One channel's bank state, its ready queue and the event it sleeps on when idle."""

    open_row: list            # per bank: the open row, -1 when closed
    pre_ok: list              # per bank: earliest precharge
    cas_ok: list              # per bank: earliest column command
    acts: list                # sorted ACT times still able to constrain (tRRD, tFAW)
    ready: list               # heap of (data ready time, request)
    waiting: object = None

    @classmethod
    def closed(cls, banks: int) -> "_Channel":
        return cls([-1] * banks, [0.0] * banks, [0.0] * banks, [], [])


@dataclass
class _Slots:
    """In-flight slots in use: the issuer takes them, completions free them."""

    requests: int = 0
    demand: int = 0
    pieces: int = 0


@dataclass
class _State:
    """What the issuer and the channels share: row outcomes, bus time, slots, completions."""

    hits: int = 0
    misses: int = 0           # bank closed
    conflicts: int = 0        # another row open
    busy: float = 0.0         # data bus time, summed over channels
    slots: _Slots = field(default_factory=_Slots)
    issuer_wait: object = None                       # event the issuer sleeps on when no release is due
    releases: deque = field(default_factory=deque)   # (time, request) in nondecreasing time order
    completions: list = field(default_factory=list)


class _SlicePath:
    """The SimPy processes of one slice: an issuer and one server per channel (module docstring)."""

    def __init__(self, cfg, reqs: _Requests, write: bool, n_sub: int, limits: _Limits):
        import simpy
        self.env = simpy.Environment()
        self.cfg, self.reqs, self.limits = cfg, reqs, limits
        self.t_wr = cfg.tWR if write else 0.0
        self.channels = [_Channel.closed(cfg.banks) for _ in range(n_sub)]
        self.state = _State()

    def run(self) -> _State:
        for ch in self.channels:
            self.env.process(self.serve(ch))
        self.env.process(self.issue())
        self.env.run()
        return self.state

    def arrive(self, i: int, t: float) -> None:
        """Request i reaches its controller at t: bank commands scheduled, data ready time queued."""
        cfg, st, reqs = self.cfg, self.state, self.reqs
        ch = self.channels[reqs.channel[i]]
        b, r = reqs.bank[i], reqs.row[i]
        orow = ch.open_row
        if orow[b] == r:
            st.hits += 1
            cas = max(t, ch.cas_ok[b])
        else:
            if orow[b] < 0:
                st.misses += 1
                act = t
            else:
                st.conflicts += 1
                act = max(t, ch.pre_ok[b]) + cfg.tRP
            act = _act_slot(ch.acts, act, cfg.tRRD, cfg.tFAW, t)
            orow[b] = r
            ch.pre_ok[b] = act + cfg.tRAS
            cas = act + cfg.tRCD
        t_req = cfg.t_request
        ch.cas_ok[b] = cas + t_req
        if cas + t_req + self.t_wr > ch.pre_ok[b]:
            ch.pre_ok[b] = cas + t_req + self.t_wr
        heapq.heappush(ch.ready, (cas + cfg.tCL, i))
        ev = ch.waiting
        if ev is not None:
            ch.waiting = None
            ev.succeed()

    def serve(self, ch: _Channel):
        """The channel's data bus: transfers ready requests earliest-ready first."""
        env, st, heap = self.env, self.state, ch.ready
        t_req, t_cl, fabric = self.cfg.t_request, self.cfg.tCL, self.cfg.fabric_latency
        while True:
            if not heap:
                ch.waiting = env.event()
                yield ch.waiting
                continue
            ready, i = heap[0]
            if ready > env.now:
                # Sleep at most tCL: anything arriving meanwhile is ready tCL after its arrival at
                # the earliest, so it is seen before it could have overtaken the waiting request.
                yield env.timeout(min(ready - env.now, t_cl))
                continue
            heapq.heappop(heap)
            st.busy += t_req
            yield env.timeout(t_req)
            done = env.now + fabric
            st.releases.append((done, i))
            st.completions.append(done)
            ev = st.issuer_wait
            if ev is not None:
                st.issuer_wait = None
                ev.succeed()

    def release_done(self) -> None:
        """Free the slots of every request completed by now."""
        slots, reqs, now = self.state.slots, self.reqs, self.env.now
        releases, piece_left = self.state.releases, reqs.piece_left
        while releases and releases[0][0] <= now:
            _, j = releases.popleft()
            slots.requests -= 1
            if reqs.demand[j]:
                slots.demand -= 1
                left = piece_left.get(reqs.piece[j])
                if left is not None:
                    if left <= 1:
                        del piece_left[reqs.piece[j]]
                        slots.pieces -= 1
                    else:
                        piece_left[reqs.piece[j]] = left - 1

    def can_issue(self, i: int) -> bool:
        """Whether every slot request i needs is free."""
        slots, lim, reqs = self.state.slots, self.limits, self.reqs
        return (slots.requests < lim.requests and (not reqs.demand[i] or slots.demand < lim.demand)
                and (not reqs.first[i] or slots.pieces < lim.pieces))

    def issue(self):
        """Walk the requests in program order, each when its slots are free."""
        env, st, reqs = self.env, self.state, self.reqs
        n = len(reqs.channel)
        i = 0
        while i < n:
            self.release_done()
            if self.can_issue(i):
                st.slots.requests += 1
                if reqs.demand[i]:
                    st.slots.demand += 1
                if reqs.first[i] and reqs.piece[i] in reqs.piece_left:
                    st.slots.pieces += 1
                self.arrive(i, env.now)
                i += 1
                continue
            if st.releases:
                yield env.timeout(st.releases[0][0] - env.now)
            else:
                st.issuer_wait = env.event()
                yield st.issuer_wait


def simulate(cfg, channel, bank, row, demand, write: bool, n_sub: int, max_requests: int,
             max_demand: int, piece=None, max_pieces: int | None = None) -> SliceResult:
    """Run the requests (arrays in program order) through ``n_sub`` channels; return completions.

    Without `piece` (or `max_pieces`) there are no piece slots."""
    n = len(channel)
    if n == 0:
        return SliceResult(np.zeros(0), 0, 0, 0, 0.0, n_sub)
    if max_pieces is None:
        piece = None
    reqs = _Requests.of(channel, bank, row, demand, piece)
    limits = _Limits(max_requests, max_demand, n + 1 if piece is None else max_pieces)
    st = _SlicePath(cfg, reqs, write, n_sub, limits).run()
    return SliceResult(np.asarray(st.completions), st.hits, st.misses, st.conflicts, st.busy, n_sub)
