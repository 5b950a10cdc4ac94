"""Arguments that several commands share: device, model shape, SparQ settings, storage,
implementation model and timing, output format.

The flags of the model shape, the workload and the implementation choice are those declared on
the fields of ModelConfig, Workload and ImplementationChoice (sparq_sim.config_flags); they are
parsed as plain strings and converted by each field's parser, so every problem becomes one
UserError naming the flag and the value.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field, replace
from functools import partial

from sparq_sim import config_flags
from sparq_sim.config_flags import flag
from sparq_sim.errors import UserError
from sparq_sim.implementations import BEST_ESTIMATE_HELP, DEFAULT_IMPLEMENTATION
from sparq_sim.models import ModelConfig, custom_model, get_preset
from sparq_sim.units import parse_positive_int
from sparq_sim.workload import COMPRESSION_FLAG, MAX_BATCH, Workload  # noqa: F401 (MAX_BATCH: for the commands)

MAX_THREADS = 4096
STORAGE = ("kv_dtype", "weight_dtype", "store_k", "reallocate")     # Workload's fields of storage
DTYPES = ("kv_dtype", "weight_dtype")


def _impl_help() -> str:
    from sparq_sim.implementations import all_implementations
    return "implementation model: " + "; ".join(f"{n}: {i.description}" for n, i in all_implementations().items())


def _timing_help() -> str:
    from sparq_sim.timing import TIMERS
    return (f"how phases are timed: {', '.join(TIMERS)} (default: the implementation's own, "
            "calibrated for gpt-fast, else roofline)")


@dataclass(frozen=True)
class ImplementationChoice:
    """Which implementation model prices the phases, on how many CPU threads, and how they are timed."""

    impl: str = field(default=DEFAULT_IMPLEMENTATION, metadata=flag(metavar="NAME", help=_impl_help))
    threads: int | None = field(default=None, metadata=flag(
        parse=partial(parse_positive_int, maximum=MAX_THREADS), metavar="N",
        help="CPU threads for CPU implementation models (llama.cpp; default: all cores)"))
    timing: str | None = field(default=None, metadata=flag(metavar="HOW", help=_timing_help))


def add_hardware_argument(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--hw", required=required, metavar="NAME|FILE",
                        help="device name or alias (see `sparq-sim hw list`) or path to a hardware .toml file")


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model PRESET, or its shape fields one by one (they override the preset)."""
    config_flags.add_flags(parser.add_argument_group("model shape"), ModelConfig)


def add_seq_argument(parser, batch: bool = False) -> None:
    """--seq (required) and, with `batch`, --batch: for the commands that take one sequence length
    but not the SparQ settings."""
    config_flags.add_flags(parser, Workload, ("seq", "batch") if batch else ("seq",), required=("seq",))


def add_compression_argument(parser) -> None:
    """--compression C: r and k set to move C of dense attention's traffic."""
    config_flags.add_flag(parser, COMPRESSION_FLAG)


def add_sparq_arguments(parser: argparse.ArgumentParser, seq_required: bool = True) -> None:
    """--seq, --batch, --r/--k or --compression, --local-window, dtypes and K storage."""
    group = parser.add_argument_group("workload")
    config_flags.add_flags(group, Workload, ("seq", "batch", "r", "k"), required=("seq",) if seq_required else ())
    add_compression_argument(group)
    config_flags.add_flags(group, Workload, ("local_window",))
    add_storage_arguments(group)


def add_storage_arguments(group, names=STORAGE) -> None:
    """Dtypes of KV cache and weights, K storage and the reallocation switch (or those in `names`)."""
    config_flags.add_flags(group, Workload, names)


def add_storage_group(parser, names=STORAGE) -> None:
    """The storage flags (those in `names`) in a group of their own."""
    add_storage_arguments(parser.add_argument_group("storage"), names)


def implementation_from_args(args):
    """The implementation model named by --impl, configured with --threads where given."""
    from sparq_sim.implementations import get_implementation

    impl = get_implementation(args.impl)
    if getattr(args, "threads", None) is None:
        return impl
    n = config_flags.parsed(ImplementationChoice, args, ("threads",))["threads"]
    configure = getattr(impl, "configure", None)
    if configure is None:
        raise UserError(f"--threads does not apply to implementation {impl.name}: it is for CPU "
                        "implementation models such as llama.cpp")
    return configure(threads=n)


def add_impl_arguments(parser, timing: bool = True, best_estimate: bool = False) -> None:
    """--impl NAME, --threads N and (with `timing`) --timing HOW. With `best_estimate`, --impl has
    no default: the command takes implementations.best_estimate of its device and timing."""
    specs = config_flags.flags(ImplementationChoice, None if timing else ("impl", "threads"))
    if best_estimate:
        impl = specs["impl"]
        text = impl.help() if callable(impl.help) else impl.help
        specs["impl"] = replace(impl, default=None, help=f"{text} (default: "
                                f"{BEST_ESTIMATE_HELP})")
    config_flags.add_flag(parser, *specs.values())


def model_from_args(args) -> ModelConfig:
    """The preset with any shape flags applied."""
    shape = config_flags.parsed(ModelConfig, args)
    return custom_model(get_preset(shape.pop("name")), **shape)


def sparq_values(args, names=None) -> dict:
    """The parsed SparQ and storage flags (Workload's fields, only `names` where given) and
    `compression` where the parser has --compression."""
    values = config_flags.parsed(Workload, args, names)
    if hasattr(args, COMPRESSION_FLAG.dest):
        values["compression"] = COMPRESSION_FLAG.value(getattr(args, COMPRESSION_FLAG.dest))
    return values


def storage_values(args, names=STORAGE) -> dict:
    """The parsed storage flags (Workload's fields in `names`)."""
    return config_flags.parsed(Workload, args, names)


def workload_from_args(args, seq: int | None = None) -> Workload:
    """A validated Workload from the shared flags (`seq` overrides --seq for sweeps)."""
    model = model_from_args(args)
    values = sparq_values(args)
    if seq is not None:
        values["seq"] = seq
    return Workload.build(model, **values)


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))
