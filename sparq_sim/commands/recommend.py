"""`sparq-sim recommend`: the Pareto front of tokens/s, published quality retention and memory."""

from __future__ import annotations

import re

from sparq_sim.commands import _args
from sparq_sim.errors import UserError

NAME = "recommend"
HELP = "which method and settings: the Pareto front of tokens/s, quality retention and memory, with reasons"
ORDER = 26

_MEMORY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(GB|GIB|MB|TB)?\s*$", re.IGNORECASE)
_SCALE = {None: 1e9, "GB": 1e9, "GIB": 2 ** 30, "MB": 1e6, "TB": 1e12}


def parse_memory(text: str) -> float:
    """'80GB', '80 GiB', '40' (GB) -> bytes."""
    match = _MEMORY.match(str(text))
    if not match:
        raise UserError(f"bad --max-memory {text!r}: expected a size such as 80GB or 40GiB")
    value = float(match.group(1)) * _SCALE[match.group(2).upper() if match.group(2) else None]
    if value <= 0:
        raise UserError(f"bad --max-memory {text!r}: must be positive")
    return value


def parse_min_retention(text: str) -> tuple[str, float]:
    """'squad:0.95' -> ('squad', 0.95)."""
    if ":" not in str(text):
        raise UserError(f"bad --min-retention {text!r}: expected TASK:FRACTION, e.g. squad:0.95")
    task, value = str(text).split(":", 1)
    try:
        v = float(value)
    except ValueError:
        raise UserError(f"bad --min-retention {text!r}: {value!r} is not a number") from None
    if not task.strip() or not 0 < v <= 1.5:
        raise UserError(f"bad --min-retention {text!r}: expected a task and a fraction such as 0.95")
    return task.strip().lower(), v


def add_arguments(parser) -> None:
    from sparq_sim.methods import NAMES
    _args.add_hardware_argument(parser)
    _args.add_seq_argument(parser)
    parser.add_argument("--batch", help="serve this batch (default: each setting at its own largest batch)")
    parser.add_argument("--min-retention", dest="min_retention", metavar="TASK:FRACTION",
                        help="keep only settings with published retention at least this, e.g. squad:0.95")
    parser.add_argument("--task", help="task whose retention is reported (default: that of --min-retention, else squad)")
    parser.add_argument("--max-memory", dest="max_memory", metavar="SIZE",
                        help="memory limit for weights and KV caches, e.g. 80GB")
    parser.add_argument("--methods", default=",".join(NAMES), metavar="NAME[,NAME...]",
                        help="methods to consider (default all)")
    parser.add_argument("--quality-model", dest="quality_model", metavar="PRESET",
                        help="use this model's published quality (borrowed, and said so)")
    _args.add_storage_group(parser, _args.DTYPES)
    _args.add_model_arguments(parser)
    _args.add_format_argument(parser)


def run(args) -> int:
    from sparq_sim import dtypes
    from sparq_sim.hardware import load_device
    from sparq_sim.methods import parse_method_list
    from sparq_sim.models import get_preset
    from sparq_sim.recommend import format_recommendation, recommend
    from sparq_sim.units import parse_positive_int, parse_seq

    seq = parse_seq(args.seq, "--seq")
    batch = None if args.batch is None else parse_positive_int(args.batch, "--batch")
    min_ret = None if args.min_retention is None else parse_min_retention(args.min_retention)
    if min_ret and args.task and args.task.strip().lower() != min_ret[0]:
        raise UserError(f"--task {args.task} and --min-retention {args.min_retention} name different tasks")
    max_mem = None if args.max_memory is None else parse_memory(args.max_memory)
    methods = parse_method_list(args.methods)
    if args.quality_model:
        get_preset(args.quality_model)
    model = _args.model_from_args(args)
    device = load_device(args.hw)
    rec = recommend(device, model, seq, batch=batch, min_retention=min_ret, max_memory=max_mem, methods=methods,
                    task=args.task.strip().lower() if args.task else None, kv_dtype=dtypes.canonical(args.kv_dtype),
                    weight_dtype=dtypes.canonical(args.weight_dtype), quality_model=args.quality_model)
    if args.format == "json":
        _args.print_json(rec.to_dict())
    else:
        print(format_recommendation(rec))
    return 0
