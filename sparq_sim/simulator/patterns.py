"""Access patterns of a phase -> the request stream of a representative slice.

An ``Access`` (sparq_sim.traffic) becomes requests of the device's access granularity (32-byte
sectors on GPUs, 64-byte lines on CPUs), in program order, with absolute addresses:

* stream       runs laid back to back; request j is at j * g (dense K, V, K_t, weights, q, out)
* gather       pieces of ``size`` bytes: at i * stride when a stride is given (K_t append),
               otherwise at random positions aligned to the piece size (step-2 row gathers)
* sparse_rows  contiguous rows of ``row_bytes``; ``picks`` distinct random elements per row,
               every distinct unit touched is one request (step 1 with K stored once)

Addresses are mapped to (channel, bank, row) the way the device's controller would: channel
interleaving every ``interleave_bytes`` (XOR-folded when ``channel_hash``), then within the
channel consecutive bytes fill a row, consecutive rows go to permuted banks.

Only requests that fall on a subset of channels (0 .. n_sub - 1) are kept (see engine.py):
generation goes on, chunk by chunk, until the slice has ``target`` such requests or the
pattern ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sparq_sim.traffic import Pattern

RANDOM_REGION = 1 << 36   # bytes over which random row gathers are spread


@dataclass
class Slice:
    channel: np.ndarray     # int, subset channel index of each kept request
    bank: np.ndarray
    row: np.ndarray
    demand: np.ndarray      # bool: a demand miss (first lines of a piece), not a prefetch
    piece: np.ndarray       # int: which piece (run, row) each request belongs to
    write: bool
    generated_requests: int  # requests generated on all channels (kept or not)
    generated_pieces: int
    complete: bool          # the whole pattern was generated
    total_requests: float   # requests of the whole pattern (exact, or mean per piece x pieces)


def map_addresses(addr: np.ndarray, cfg):
    """Byte addresses -> (channel, bank, row) arrays."""
    chunk = addr // cfg.interleave_bytes
    if cfg.channel_hash:
        h = chunk ^ (chunk >> 5) ^ (chunk >> 11) ^ (chunk >> 17)
    else:
        h = chunk
    channel = h % cfg.channels
    local = (h // cfg.channels) * cfg.interleave_bytes + addr % cfg.interleave_bytes
    row_global = local // cfg.row_bytes
    banks = cfg.banks
    bank = (row_global ^ (row_global // banks)) % banks
    row = row_global // banks
    return channel, bank, row


def _lines_of_pieces(starts: np.ndarray, size: int, g: int):
    """Unit-aligned request addresses of pieces [start, start+size), and each one's index in its piece."""
    first = starts // g
    last = (starts + size - 1) // g
    n = (last - first + 1).astype(np.int64)
    total = int(n.sum())
    piece_of = np.repeat(np.arange(len(starts)), n)
    offsets = np.arange(total) - np.repeat(np.cumsum(n) - n, n)
    return (first[piece_of] + offsets) * g, offsets, piece_of


def _chunk(access, cfg, rng, p0: int, p1: int):
    """Requests of pieces p0..p1-1 (runs' lines for streams): addresses and index within piece."""
    g = cfg.request_bytes
    if access.pattern == Pattern.STREAM:
        per_run = math.ceil(access.size / g)
        j = np.arange(p0, p1, dtype=np.int64)
        return j * g, j % per_run, j // per_run
    if access.pattern == Pattern.GATHER:
        idx = np.arange(p0, p1, dtype=np.int64)
        if access.row_bytes:
            starts = idx * access.row_bytes
        else:
            align = access.size if access.size & (access.size - 1) == 0 else g
            starts = rng.integers(0, RANDOM_REGION // align, size=p1 - p0, dtype=np.int64) * align
        addr, within, piece = _lines_of_pieces(starts, access.size, g)
        return addr, within, piece + p0
    # sparse_rows: picks distinct elements of each row
    n_el = access.row_bytes // access.size
    n = p1 - p0
    if access.picks >= n_el:
        picked = np.broadcast_to(np.arange(n_el), (n, n_el))
    else:
        picked = np.argpartition(rng.random((n, n_el)), access.picks - 1, axis=1)[:, :access.picks]
    rows = np.arange(p0, p1, dtype=np.int64)[:, None] * access.row_bytes
    units = np.sort((rows + picked * access.size) // g, axis=1)
    keep = np.ones_like(units, dtype=bool)
    keep[:, 1:] = units[:, 1:] != units[:, :-1]
    within = np.cumsum(keep, axis=1) - 1
    piece = np.broadcast_to(np.arange(p0, p1, dtype=np.int64)[:, None], units.shape)
    return units[keep] * g, within[keep], piece[keep]


def pieces_of(access, cfg) -> int:
    """Number of generation steps of the whole pattern (lines for streams, pieces otherwise)."""
    if access.pattern == Pattern.STREAM:
        return access.count * math.ceil(access.size / cfg.request_bytes)
    return access.count


def make_slice(access, cfg, n_sub: int, target: int, seed: int) -> Slice:
    """Generate the pattern in program order until ``target`` requests land on channels < n_sub."""
    rng = np.random.default_rng(seed)
    total_pieces = pieces_of(access, cfg)
    est_per_piece = max(1.0, access.moved_bytes(cfg.request_bytes) / cfg.request_bytes / max(1, access.count))
    if access.pattern == Pattern.STREAM:
        est_per_piece = 1.0
    share = n_sub / cfg.channels
    parts = {"channel": [], "bank": [], "row": [], "demand": [], "piece": []}
    kept = generated = 0
    p = 0
    while p < total_pieces and kept < target:
        want = (target - kept) / share / est_per_piece
        step = int(min(total_pieces - p, max(64, want * 1.1 + 16)))
        addr, within, piece = _chunk(access, cfg, rng, p, p + step)
        ch, bank, row = map_addresses(addr, cfg)
        mask = ch < n_sub
        idx = np.nonzero(mask)[0]
        if kept + len(idx) > target:
            # stop at the piece that holds the target-th kept request
            cut = idx[target - kept - 1] + 1
            piece_end = cut
            if access.pattern == Pattern.STREAM:
                n_pieces_used = cut
            else:
                while piece_end < len(within) and within[piece_end] != 0:
                    piece_end += 1
                n_pieces_used = int(np.count_nonzero(within[:piece_end] == 0))
            addr_mask = mask[:piece_end]
            generated += piece_end
            p += n_pieces_used
            sel = np.nonzero(addr_mask)[0]
        else:
            generated += len(addr)
            p += step
            sel = idx
        parts["channel"].append(ch[sel])
        parts["bank"].append(bank[sel])
        parts["row"].append(row[sel])
        parts["demand"].append(within[sel] < cfg.prefetch_after)
        parts["piece"].append(piece[sel])
        kept += len(sel)
    complete = p >= total_pieces
    if access.pattern == Pattern.STREAM:
        total_requests = float(total_pieces)
    elif complete:
        total_requests = float(generated)
    else:
        total_requests = generated / max(1, p) * total_pieces
    cat = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)) for k, v in parts.items()}
    return Slice(cat["channel"].astype(np.int64), cat["bank"].astype(np.int64), cat["row"].astype(np.int64),
                 cat["demand"].astype(bool), cat["piece"].astype(np.int64), access.write, generated, p, complete, total_requests)
