"""A serving simulator: requests arrive, are admitted while their KV cache fits, prefilled, then
decoded together in continuous batches; dense against SparQ on the same arrivals.

Model (SimPy discrete events, one engine per tensor-parallel group):

* Arrivals: Poisson at `rate` over [0, duration) (numpy's default generator with `seed`), each
  with the fixed prompt and output lengths or lengths drawn from a CSV; or a CSV of arrival time,
  prompt and output lengths replayed as it is.
* Admission, first come first served: a request is admitted when its whole KV cache (prompt plus
  output, K twice for SparQ with K stored twice, plus SparQ's running value mean) fits in what
  the weights and the reserve leave; it keeps that memory until it finishes (no preemption).
* Prefill first: admitted requests are prefilled one after another (``sparq_sim.prefill``),
  stalling decoding, which yields their first token; then one decoding step for every running
  request; each request leaves after its last token and frees its memory.
* Step time: ``sparq_sim.batch.mixed_step`` (the implementation model and timer the user chose)
  of a uniform batch of B sequences of mean length L = T / B, where T is the total KV length the
  step reads, interpolated bilinearly on a lazily filled grid of (B, L) (every B up to 16, then
  steps of 25%; L in steps of 25%). The roofline of a memory-bound step is bilinear in (B, L)
  (attention bytes grow with B x L, weights are read once), so the grid is exact there.

Metrics are over the requests that arrived in [0, duration): TTFT (arrival to first token,
queueing included), TPOT ((last token - first token) / (output - 1)), latency (arrival to last
token); throughput counts tokens produced in [0, duration); goodput counts requests that met both
latency targets; mean in system is the time average of the requests present (waiting or running)
over [0, duration), so Little's law (mean in system = arrival rate x mean latency) checks it.
The simulation runs past `duration` until every request finished, or up to ``DRAIN_FACTOR`` x
duration when the rate exceeds what the device serves.
"""

from __future__ import annotations

import bisect
import csv
import heapq
import math
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from sparq_sim.config_flags import flag
from sparq_sim.dtypes import DEFAULT_DTYPE
from sparq_sim.errors import UserError
from sparq_sim.models import ModelConfig
from sparq_sim.units import parse_duration, parse_int, parse_positive_int, parse_seq

METHODS = ("dense", "sparq")
DRAIN_FACTOR = 3.0
DEFAULT_TTFT_SLO_S = 2.0      # goodput targets when none are given (assumed: interactive chat)
DEFAULT_TPOT_SLO_S = 0.050
DEFAULT_DURATION_S = 600


def parse_fixed_tp(text, what: str = "--tp") -> int:
    """A tensor-parallel degree N ('auto' is for planning, not for a simulation)."""
    from sparq_sim.parallel import parse_tp
    tp = parse_tp(text)
    if tp == "auto":
        raise UserError("serve-sim needs a fixed --tp N")
    return tp


# ---------------------------------------------------------------- requests

@dataclass(frozen=True)
class Requests:
    arrival_s: tuple[float, ...]
    prompt: tuple[int, ...]
    generate: tuple[int, ...]
    source: str

    def __len__(self) -> int:
        return len(self.arrival_s)


def read_requests_csv(path) -> tuple[list[float] | None, list[int], list[int]]:
    """A CSV with columns prompt and generate (and optionally arrival_s, in seconds)."""
    from sparq_sim.units import parse_seq
    p = Path(path)
    if not p.is_file():
        raise UserError(f"lengths file {path} does not exist")
    rows = list(csv.DictReader(p.read_text().splitlines()))
    if not rows:
        raise UserError(f"lengths file {path} has no rows")
    header = {k.strip().lower(): k for k in rows[0] if k}
    for need in ("prompt", "generate"):
        if need not in header:
            raise UserError(f"lengths file {path}: needs columns prompt and generate "
                            f"(and optionally arrival_s); has {', '.join(header)}")
    arrival_key = header.get("arrival_s") or header.get("arrival")
    arrivals, prompts, gens = ([] if arrival_key else None), [], []
    for n, row in enumerate(rows, start=2):
        prompts.append(parse_seq(row[header["prompt"]], f"prompt on line {n} of {path}"))
        gens.append(parse_seq(row[header["generate"]], f"generate on line {n} of {path}"))
        if arrival_key:
            try:
                t = float(row[arrival_key])
            except (TypeError, ValueError):
                raise UserError(f"lengths file {path}: bad arrival time on line {n}: {row[arrival_key]!r}") from None
            if not t >= 0:
                raise UserError(f"lengths file {path}: arrival time on line {n} must be at least 0")
            arrivals.append(t)
    return arrivals, prompts, gens


def make_requests(rate: float | None, duration_s: float, *, prompt: int | None = None,
                  generate: int | None = None, lengths_file=None, seed: int = 0) -> Requests:
    """Poisson arrivals with fixed or sampled lengths, or a replayed CSV (arrivals in [0, duration))."""
    import numpy as np
    rng = np.random.default_rng(seed)
    if lengths_file is not None:
        arrivals, prompts, gens = read_requests_csv(lengths_file)
        if arrivals is not None:
            order = sorted(range(len(arrivals)), key=lambda i: arrivals[i])
            keep = [i for i in order if arrivals[i] < duration_s]
            return Requests(tuple(arrivals[i] for i in keep), tuple(prompts[i] for i in keep),
                            tuple(gens[i] for i in keep), f"replay of {lengths_file}")
    if rate is None or not rate > 0:
        raise UserError("give --rate (requests/s) for Poisson arrivals, or a --lengths file with arrival_s")
    times, t = [], 0.0
    # draw inter-arrival gaps in blocks: the same seed gives the same arrivals
    while True:
        gaps = rng.exponential(1.0 / rate, size=max(16, int(rate * duration_s * 1.2) + 16))
        for g in gaps:
            t += g
            if t >= duration_s:
                break
            times.append(float(t))
        else:
            continue
        break
    n = len(times)
    if lengths_file is not None:
        pick = rng.integers(0, len(prompts), size=n)
        p_out, g_out = tuple(int(prompts[i]) for i in pick), tuple(int(gens[i]) for i in pick)
        source = f"Poisson at {rate:g}/s, lengths drawn from {lengths_file}"
    else:
        if prompt is None or generate is None:
            raise UserError("give --prompt and --generate, or a --lengths file")
        p_out, g_out = (prompt,) * n, (generate,) * n
        source = f"Poisson at {rate:g}/s, prompt {prompt}, generate {generate}"
    return Requests(tuple(times), p_out, g_out, source)


# ---------------------------------------------------------------- costs

def _grid_index(values: list[float], x: float) -> tuple[int, float]:
    """Bracketing index i (values[i] <= x <= values[i + 1]) and the weight of values[i + 1]."""
    if x <= values[0]:
        return 0, 0.0
    if x >= values[-1]:
        return len(values) - 2, 1.0
    i = bisect.bisect_right(values, x) - 1
    return i, (x - values[i]) / (values[i + 1] - values[i])


def batch_axis(limit: int) -> list[int]:
    """Every batch up to 16, then steps of 25%, and `limit`."""
    out, b = list(range(1, min(limit, 16) + 1)), 16
    while b < limit:
        b = min(limit, max(b + 1, int(b * 1.25)))
        out.append(b)
    return out


def length_axis(longest: int) -> list[float]:
    out, length = [1.0], 1.0
    while length < longest:
        length = min(float(longest), max(length + 1, length * 1.25))
        out.append(length)
    if len(out) == 1:
        out.append(2.0)
    return out


class MethodCosts:
    """Prefill, step time and KV memory of one method on one (tensor-parallel group of) device(s)."""

    def __init__(self, device, model: ModelConfig, method: str, *, longest: int, shortest: int = 1, tp: int = 1,
                 compression=None, kv_dtype="float16", weight_dtype="float16", store_k="twice",
                 reallocate=True, implementation="ideal", timing=None, reserve_fraction=None,
                 max_batch: int | None = None):
        from sparq_sim import capacity
        from sparq_sim.implementations import resolve
        from sparq_sim.parallel import shard_model
        from sparq_sim.timing import timer_for

        self.device, self.model, self.method, self.tp = device, model, method, tp
        self.shard = shard_model(model, tp)
        self.impl = resolve(implementation)
        self.timer = timer_for(self.impl, timing, device)
        self.storage = dict(kv_dtype=kv_dtype, weight_dtype=weight_dtype, store_k=store_k, reallocate=reallocate)
        self.compression = compression
        reserve = capacity.RESERVE_FRACTION if reserve_fraction is None else reserve_fraction
        cap = device.capacity_bytes.value
        self.free_bytes = cap - capacity.weights_bytes(self.shard, weight_dtype) - reserve * cap
        self.per_token = capacity.kv_bytes_per_token(self.shard, kv_dtype, method, store_k)
        self.per_sequence = capacity.state_bytes_per_sequence(self.shard, method, reallocate)
        if self.free_bytes <= 0:
            raise UserError(f"{model.name} does not fit on {device.name} at tensor parallelism {tp}: the "
                            f"weights and reserve exceed its memory")
        fit = int(self.free_bytes // self.kv_need(shortest))           # the most requests memory holds
        self.max_batch = max(1, min(fit, max_batch) if max_batch else fit)
        self.batch_at_longest = int(self.free_bytes // self.kv_need(longest))
        self.batches = batch_axis(self.max_batch)
        self.lengths = length_axis(max(2, longest))
        self._cells: dict = {}
        self._prefill: dict = {}

    def kv_need(self, tokens: int) -> float:
        return self.per_token * tokens + self.per_sequence

    def prefill_s(self, prompt: int) -> float:
        if prompt not in self._prefill:
            from sparq_sim.parallel import communication_time
            from sparq_sim.prefill import prefill
            s = self.storage
            self._prefill[prompt] = prefill(self.device, self.shard, prompt, method=self.method,
                                            kv_dtype=s["kv_dtype"], weight_dtype=s["weight_dtype"],
                                            store_k=s["store_k"],
                                            extra_s=communication_time(self.device, self.model, self.tp,
                                                                       prompt)).time_s
        return self._prefill[prompt]

    def _cell(self, i: int, j: int) -> float:
        key = (i, j)
        if key not in self._cells:
            from sparq_sim.batch import mixed_step
            b, length = self.batches[i], max(1, int(round(self.lengths[j])))
            self._cells[key] = mixed_step(self.device, self.model, [length] * b, self.method,
                                          compression=self.compression, implementation=self.impl,
                                          timer=self.timer, tp=self.tp, **self.storage).time_s
        return self._cells[key]

    def step_s(self, batch: int, total_tokens: int) -> float:
        """Step time of `batch` sequences reading `total_tokens` KV positions in all."""
        if len(self.batches) == 1:
            i, wb = 0, 0.0
        else:
            i, wb = _grid_index(self.batches, batch)
        j, wl = _grid_index(self.lengths, total_tokens / batch)
        cols = (self._cell(i, j), self._cell(i, j + 1))
        low = cols[0] + wl * (cols[1] - cols[0])
        if len(self.batches) == 1:
            return low
        hi_cols = (self._cell(i + 1, j), self._cell(i + 1, j + 1))
        high = hi_cols[0] + wl * (hi_cols[1] - hi_cols[0])
        return low + wb * (high - low)


# ---------------------------------------------------------------- the simulation

@dataclass
class MethodResult:
    method: str
    ttft_s: list = field(default_factory=list)
    tpot_s: list = field(default_factory=list)
    latency_s: list = field(default_factory=list)
    met_targets: int = 0
    tokens_in_window: int = 0
    area_in_system: float = 0.0
    arrivals_in_window: int = 0
    completed: int = 0
    incomplete: int = 0
    steps: int = 0
    batch_sum: float = 0.0
    queue_samples: dict = field(default_factory=dict)
    max_queue: int = 0
    max_batch: int = 0
    end_s: float = 0.0


def simulate(requests: Requests, costs: MethodCosts, duration_s: float, *, ttft_slo_s: float,
             tpot_slo_s: float, progress=None) -> MethodResult:
    """Run the engine over `requests`; `progress(seconds)` is told how far simulated time got."""
    import simpy

    n = len(requests)
    arrival, prompt, gen = requests.arrival_s, requests.prompt, requests.generate
    need = [costs.kv_need(p + g) for p, g in zip(prompt, gen)]
    for i in range(n):
        if need[i] > costs.free_bytes:
            raise UserError(f"a request of {prompt[i]} + {gen[i]} tokens needs {need[i] / 1e9:.3g} GB of KV "
                            f"cache ({costs.method}); only {costs.free_bytes / 1e9:.3g} GB is free beside the "
                            "weights and reserve")
    env = simpy.Environment()
    res = MethodResult(costs.method, max_batch=min(costs.max_batch, costs.batch_at_longest))
    waiting: deque = deque()
    first = [math.nan] * n
    done = [math.nan] * n
    state = {"count": 0, "last": 0.0, "wake": None, "arrived": 0, "tick": 1.0}

    def change(delta: int) -> None:
        now = env.now
        lo, hi = min(state["last"], duration_s), min(now, duration_s)
        res.area_in_system += state["count"] * (hi - lo)
        state["count"] += delta
        state["last"] = now

    def arrivals():
        for i in range(n):
            yield env.timeout(arrival[i] - env.now)
            waiting.append(i)
            state["arrived"] += 1
            change(+1)
            res.max_queue = max(res.max_queue, len(waiting))
            if state["wake"] is not None and not state["wake"].triggered:
                state["wake"].succeed()

    def monitor():
        for frac in (0.25, 0.5, 0.75, 1.0):
            yield env.timeout(frac * duration_s - env.now)
            res.queue_samples[frac] = len(waiting)

    def tick():
        if progress is not None and env.now >= state["tick"]:
            progress(min(env.now, duration_s))
            state["tick"] = math.floor(env.now) + 1.0

    def finish(i: int) -> None:
        done[i] = env.now
        change(-1)

    def engine():
        free, batch, total, step = costs.free_bytes, 0, 0, 0
        ends: list = []        # (step index of the last token, request)
        while True:
            admitted = []
            while waiting and batch + len(admitted) < costs.max_batch and need[waiting[0]] <= free:
                i = waiting.popleft()
                free -= need[i]
                admitted.append(i)
            if admitted:
                for i in admitted:
                    yield env.timeout(costs.prefill_s(prompt[i]))
                    first[i] = env.now
                    if env.now <= duration_s:
                        res.tokens_in_window += 1
                    if gen[i] == 1:
                        free += need[i]
                        finish(i)
                    else:
                        batch += 1
                        total += prompt[i] + 1
                        heapq.heappush(ends, (step + gen[i] - 1, i))
                tick()
                continue
            if batch == 0:
                if state["arrived"] == n:
                    return
                state["wake"] = env.event()
                yield state["wake"]
                state["wake"] = None
                continue
            yield env.timeout(costs.step_s(batch, total))
            step += 1
            res.steps += 1
            res.batch_sum += batch
            if env.now <= duration_s:
                res.tokens_in_window += batch
            total += batch
            while ends and ends[0][0] == step:
                _, i = heapq.heappop(ends)
                batch -= 1
                total -= prompt[i] + gen[i]
                free += need[i]
                finish(i)
            tick()

    env.process(arrivals())
    env.process(monitor())
    proc = env.process(engine())
    env.run(until=simpy.events.AnyOf(env, [proc, env.timeout(DRAIN_FACTOR * duration_s)]))
    res.end_s = env.now
    change(0)
    if state["last"] < duration_s:
        res.area_in_system += state["count"] * (duration_s - state["last"])
    for i in range(n):
        if arrival[i] >= duration_s:
            continue
        res.arrivals_in_window += 1
        if math.isnan(done[i]):
            res.incomplete += 1
            continue
        res.completed += 1
        ttft = first[i] - arrival[i]
        tpot = (done[i] - first[i]) / (gen[i] - 1) if gen[i] > 1 else 0.0
        res.ttft_s.append(ttft)
        if gen[i] > 1:
            res.tpot_s.append(tpot)
        res.latency_s.append(done[i] - arrival[i])
        if ttft <= ttft_slo_s and tpot <= tpot_slo_s:
            res.met_targets += 1
    return res


def summary(res: MethodResult, duration_s: float) -> dict:
    """The reported figures of one method (JSON keys)."""
    import numpy as np

    def pct(values, q):
        return float(np.percentile(values, q)) if values else None

    return {
        "ttft_p50_s": pct(res.ttft_s, 50), "ttft_p99_s": pct(res.ttft_s, 99),
        "tpot_p50_s": pct(res.tpot_s, 50), "tpot_p99_s": pct(res.tpot_s, 99),
        "throughput_tokens_per_s": res.tokens_in_window / duration_s,
        "goodput_requests_per_s": res.met_targets / duration_s,
        "arrival_rate_per_s": res.arrivals_in_window / duration_s,
        "mean_in_system": res.area_in_system / duration_s,
        "mean_latency_s": float(np.mean(res.latency_s)) if res.latency_s else None,
        "completed": res.completed, "incomplete": res.incomplete,
        "max_batch_by_memory": res.max_batch,      # requests of the longest length that fit at once
        "mean_batch": res.batch_sum / res.steps if res.steps else 0.0,
        "queue_at": {f"{k:g}": v for k, v in sorted(res.queue_samples.items())},
        "max_queue": res.max_queue, "simulated_until_s": res.end_s,
    }


@dataclass(frozen=True)
class ServeConfig:
    """Everything one serve-sim run depends on (picklable, for parallel grids of rates).

    The fields with flag metadata are serve-sim's own flags; the model, storage, compression and
    implementation come from the flags of ModelConfig, Workload and the implementation choice."""

    hw: str
    model: ModelConfig
    duration_s: float = field(default=DEFAULT_DURATION_S, metadata=flag(
        "--duration", parse_duration, help="simulated seconds of arrivals (default {default})"))
    prompt: int | None = field(default=None, metadata=flag(
        parse=parse_seq, help="prompt length of every request, e.g. 8k"))
    generate: int | None = field(default=None, metadata=flag(
        parse=parse_seq, help="tokens generated per request, e.g. 256"))
    lengths_file: str | None = field(default=None, metadata=flag(
        "--lengths", metavar="FILE.csv", help="CSV with columns prompt, generate (lengths drawn per arrival) and "
                                               "optionally arrival_s (then replayed as it is, --rate ignored)"))
    seed: int = field(default=0, metadata=flag(parse=parse_int, default=1, help="seed of the arrivals (default {default})"))
    tp: int = field(default=1, metadata=flag(parse=parse_fixed_tp, help="tensor-parallel degree (default {default})"))
    compression: float | None = None
    kv_dtype: str = DEFAULT_DTYPE
    weight_dtype: str = DEFAULT_DTYPE
    store_k: str = "twice"
    reallocate: bool = True
    implementation: str = "ideal"
    timing: str | None = None
    ttft_slo_s: float = field(default=DEFAULT_TTFT_SLO_S, metadata=flag(
        "--ttft-slo", parse_duration, help=f"TTFT target for goodput (default {DEFAULT_TTFT_SLO_S:g}s)"))
    tpot_slo_s: float = field(default=DEFAULT_TPOT_SLO_S, metadata=flag(
        "--tpot-slo", parse_duration, help=f"TPOT target for goodput (default {DEFAULT_TPOT_SLO_S * 1e3:g}ms)"))
    max_batch: int | None = field(default=None, metadata=flag(
        parse=parse_positive_int, help="cap on the decode batch (default: KV memory only)"))


def serve_sim(config: ServeConfig, rate: float | None, progress: bool = False) -> dict:
    """Dense and SparQ on the same arrivals: {"dense": {...}, "sparq": {...}}."""
    from sparq_sim.hardware import load_device

    device = load_device(config.hw)
    from sparq_sim.parallel import check_tp
    check_tp(config.model, config.tp, device)
    reqs = make_requests(rate, config.duration_s, prompt=config.prompt, generate=config.generate,
                         lengths_file=config.lengths_file, seed=config.seed)
    if not len(reqs):
        raise UserError(f"no request arrives within {config.duration_s:g} s")
    longest = max(p + g for p, g in zip(reqs.prompt, reqs.generate))
    shortest = min(p + g for p, g in zip(reqs.prompt, reqs.generate))
    out = {}
    for method in METHODS:
        costs = MethodCosts(device, config.model, method, longest=longest, shortest=shortest, tp=config.tp,
                            compression=config.compression, kv_dtype=config.kv_dtype,
                            weight_dtype=config.weight_dtype, store_k=config.store_k,
                            reallocate=config.reallocate, implementation=config.implementation,
                            timing=config.timing, max_batch=config.max_batch)
        bar = _progress_bar(config.duration_s, method) if progress else None
        try:
            res = simulate(reqs, costs, config.duration_s, ttft_slo_s=config.ttft_slo_s,
                           tpot_slo_s=config.tpot_slo_s,
                           progress=(lambda t, b=bar: b.update(t - b.n)) if bar else None)
        finally:
            if bar is not None:
                bar.close()
        out[method] = summary(res, config.duration_s)
    return out


def serve_point(task) -> dict:
    """One (config, rate) of a grid of rates: {"rate_per_s", "dense", "sparq"} (for worker processes)."""
    config, rate = task
    return {"rate_per_s": rate, **serve_sim(config, rate)}


def _progress_bar(total: float, method: str):
    """A tqdm bar on stderr in simulated seconds; silent when stderr is not a terminal."""
    from tqdm import tqdm
    return tqdm(total=total, desc=f"serve-sim {method}", unit="sim s", file=sys.stderr,
                disable=not sys.stderr.isatty(), leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} sim s [{elapsed}]")
