"""Flags shared by the commands that take other sparse-attention methods than SparQ:
--method NAME (or --methods LIST), --set METHOD.KNOB=VALUE, --quality-model."""

from __future__ import annotations

from sparq_sim.errors import UserError


def add_method_argument(parser, plural: bool = False) -> None:
    from sparq_sim.methods import NAMES
    if plural:
        parser.add_argument("--methods", default=",".join(NAMES), metavar="NAME[,NAME...]",
                            help=f"methods to compare, comma-separated (default all: {', '.join(NAMES)}); "
                                 "dense is always included as the baseline")
    else:
        parser.add_argument("--method", metavar="NAME",
                            help=f"compare dense with this method instead of SparQ: {', '.join(NAMES)} "
                                 "(its knobs from --compression or its published default, and --set)")
    parser.add_argument("--set", dest="method_set", action="append", metavar="METHOD.KNOB=VALUE",
                        help="a method's own knob, e.g. quest.page=32, sparq.kt_format=int8, "
                             "sparq.store_k=once, h2o.heavy=1024 (repeatable)")
    parser.add_argument("--quality-model", dest="quality_model", metavar="PRESET",
                        help="show the published quality of this model instead (borrowed, and said so)")


def uses_method_path(args) -> bool:
    """True when --method names another method than SparQ, or --set is given."""
    method = getattr(args, "method", None)
    return bool(getattr(args, "method_set", None)) or (method is not None and method.strip().lower() != "sparq")


def comparison_from_args(args, names, batch: int, seq: int | None = None):
    """Run sparq_sim.compare.compare for the parsed shared flags."""
    from sparq_sim import dtypes
    from sparq_sim.commands import _args
    from sparq_sim.compare import compare
    from sparq_sim.hardware import load_device
    from sparq_sim.methods import parse_set_options
    from sparq_sim.models import get_preset
    from sparq_sim.units import parse_fraction, parse_seq

    for flag in ("r", "k"):
        if getattr(args, flag, None) is not None:
            raise UserError(f"--{flag} is a SparQ flag; with --method/--methods give sparq.{flag}=N with --set")
    model = _args.model_from_args(args)
    seq = parse_seq(args.seq, "--seq") if seq is None else seq
    compression = None
    if getattr(args, "compression", None) is not None:
        compression = parse_fraction(args.compression, "--compression")
    overrides = parse_set_options(args.method_set)
    if getattr(args, "quality_model", None):
        get_preset(args.quality_model)
    device = load_device(args.hw)
    return compare(device, model, seq, names, batch=batch, compression=compression, overrides=overrides,
                   kv_dtype=dtypes.canonical(args.kv_dtype), weight_dtype=dtypes.canonical(args.weight_dtype),
                   quality_model=getattr(args, "quality_model", None))
