"""Arguments that several commands share: device, model shape, SparQ settings, storage,
implementation model and timing, output format.

The flags are parsed as plain strings and converted here, so every problem becomes one
UserError naming the flag and the value.
"""

from __future__ import annotations

import argparse
import json

from sparq_sim.errors import UserError
from sparq_sim.models import DEFAULT_MODEL, PRESETS, custom_model, get_preset
from sparq_sim.units import parse_fraction, parse_number, parse_positive_int, parse_seq
from sparq_sim.workload import Workload

# Upper bounds of the shape flags: far above any real model or server, low enough that every
# count the traffic model and the simulator form stays finite and exact.
MAX_BATCH = 1 << 20
MAX_THREADS = 4096
SHAPE_LIMITS = {"--layers": 4096, "--heads": 4096, "--kv-heads": 4096, "--head-dim": 4096,
                "--d-model": 1 << 20}
MAX_PARAMS = 1e15


def add_hardware_argument(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--hw", required=required, metavar="NAME|FILE",
                        help="device name or alias (see `sparq-sim hw list`) or path to a hardware .toml file")


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model PRESET, or its shape fields one by one (they override the preset)."""
    group = parser.add_argument_group("model shape")
    group.add_argument("--model", default=DEFAULT_MODEL, metavar="PRESET",
                       help=f"model preset: {', '.join(PRESETS)} (default {DEFAULT_MODEL})")
    group.add_argument("--layers", help="number of layers")
    group.add_argument("--heads", help="query heads")
    group.add_argument("--kv-heads", dest="kv_heads", help="key/value heads (GQA when fewer than heads)")
    group.add_argument("--head-dim", dest="head_dim", help="head dimension d_h")
    group.add_argument("--d-model", dest="d_model", help="model width")
    group.add_argument("--params", help="parameter count, e.g. 6.7e9")


def add_sparq_arguments(parser: argparse.ArgumentParser, seq_required: bool = True) -> None:
    """--seq, --batch, --r/--k or --compression, --local-window, dtypes and K storage."""
    group = parser.add_argument_group("workload")
    group.add_argument("--seq", required=seq_required, help="sequence length S (e.g. 4096, 32k, 1m; k = 1024)")
    group.add_argument("--batch", default="1", help="batch size (default 1)")
    group.add_argument("--r", help="query components kept in step 1 (default d_h * compression)")
    group.add_argument("--k", help="positions kept in step 2 (default S * compression / 2)")
    group.add_argument("--compression", help="target fraction of dense KV traffic, e.g. 1/8 (default 1/8)")
    group.add_argument("--local-window", dest="local_window", default="0", help="local window l (default 0)")
    add_storage_arguments(group)


def add_storage_arguments(group) -> None:
    """Dtypes of KV cache and weights, K storage and the reallocation switch."""
    group.add_argument("--kv-dtype", dest="kv_dtype", default="float16",
                       help="KV-cache dtype: float32, float16, bfloat16, float8, int8 (default float16)")
    group.add_argument("--weight-dtype", dest="weight_dtype", default="float16",
                       help="weight dtype: float32, float16, bfloat16, float8, int8 (default float16)")
    group.add_argument("--store-k", dest="store_k", choices=("once", "twice"), default="twice",
                       help="keep a component-major copy of K for step 1 (twice, default: 50%% more K "
                            "memory) or not (once)")
    group.add_argument("--no-reallocate", dest="reallocate", action="store_false",
                       help="drop SparQ step 3 (mean-value reallocation) and its running mean, as the "
                            "paper does for GQA models")


def add_impl_arguments(parser, timing: bool = True) -> None:
    """--impl NAME, --threads N and (with `timing`) --timing HOW."""
    from sparq_sim.implementations import all_implementations
    impls = all_implementations()
    parser.add_argument("--impl", default="ideal", metavar="NAME",
                        help="implementation model: " + "; ".join(f"{n}: {i.description}" for n, i in impls.items()))
    parser.add_argument("--threads", metavar="N",
                        help="CPU threads for CPU implementation models (llama.cpp; default: all cores)")
    if timing:
        from sparq_sim.timing import TIMERS
        parser.add_argument("--timing", default=None, metavar="HOW",
                            help=f"how phases are timed: {', '.join(TIMERS)} (default: the implementation's own, "
                                 "calibrated for gpt-fast, else roofline)")


def implementation_from_args(args):
    """The implementation model named by --impl, configured with --threads where given."""
    from sparq_sim.implementations import get_implementation

    impl = get_implementation(args.impl)
    threads = getattr(args, "threads", None)
    if threads is None:
        return impl
    n = parse_positive_int(threads, "--threads", MAX_THREADS)
    configure = getattr(impl, "configure", None)
    if configure is None:
        raise UserError(f"--threads does not apply to implementation {impl.name}: it is for CPU "
                        "implementation models such as llama.cpp")
    return configure(threads=n)


def _int_or_none(value, what):
    return None if value is None else parse_positive_int(value, what, SHAPE_LIMITS.get(what))


def model_from_args(args):
    """The preset with any shape flags applied."""
    params = None
    if args.params is not None:
        params = parse_number(args.params, "--params", 0, MAX_PARAMS, "6.7e9")
    return custom_model(get_preset(args.model), layers=_int_or_none(args.layers, "--layers"),
                        heads=_int_or_none(args.heads, "--heads"),
                        kv_heads=_int_or_none(args.kv_heads, "--kv-heads"),
                        head_dim=_int_or_none(args.head_dim, "--head-dim"),
                        d_model=_int_or_none(args.d_model, "--d-model"), params=params)


def workload_from_args(args, seq: int | None = None) -> Workload:
    """A validated Workload from the shared flags (`seq` overrides --seq for sweeps)."""
    model = model_from_args(args)
    seq = parse_seq(args.seq, "--seq") if seq is None else seq
    compression = None if args.compression is None else parse_fraction(args.compression, "--compression")
    r = _int_or_none(args.r, "--r")
    k = _int_or_none(args.k, "--k")
    local = args.local_window
    try:
        local = int(local)
    except ValueError:
        raise UserError(f"bad --local-window {local!r}: expected an integer") from None
    return Workload.build(model, seq, batch=parse_positive_int(args.batch, "--batch", MAX_BATCH), r=r, k=k,
                          compression=compression, local_window=local, kv_dtype=args.kv_dtype,
                          weight_dtype=args.weight_dtype, store_k=args.store_k,
                          reallocate=args.reallocate)


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))
