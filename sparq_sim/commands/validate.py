"""`sparq-sim validate`: predicted against measured, on published measurements or on this machine.

    sparq-sim validate --measurements FILE.csv[,FILE.csv] [--fit] [--holdout seq] [--plot FILE] [--format json]
    sparq-sim validate --measurements TARGET.csv --fit-on SOURCE.csv [--write-accuracy FILE.json]
    sparq-sim validate --local --out FOLDER [--quick] [--calibrate]
    sparq-sim validate --end-to-end [--write-accuracy FILE.json]

See docs/validation.md for the method, the models and the recorded results.
"""

from __future__ import annotations

from pathlib import Path

from sparq_sim.commands import _args
from sparq_sim.config_flags import Flag, add_flag
from sparq_sim.errors import UserError

NAME = "validate"
HELP = "validate predictions against measurements (a CSV in the published schema, or this machine)"
ORDER = 60


SOURCE_FLAGS = (      # exactly one of them
    Flag("--measurements", metavar="FILE.csv",
         help="measurements in the schema of validation/data/README.md (several: comma-separated); "
              "runs of validate --local are predicted with the machine.toml beside them, if any"),
    Flag("--local", switch="on", help="run the project's kernels on this machine and validate against them"),
    Flag("--end-to-end", switch="on",
         help="predict the published end-to-end setups (validation/data/end-to-end.csv) with their composed "
              "implementation model and with the ideal bound, against the published step speedups"),
)
FLAGS = (
    Flag("--fit", switch="on",
         help="fit the constants on the validated file itself (otherwise the stored calibration "
              "of the device or of its kind, with the device's own hardware figures)"),
    Flag("--fit-on", metavar="SOURCE.csv",
         help="fit the constants on these measurements (another device; comma-separated for several) "
              "and predict --measurements with each device's own physics: cross-device validation "
              "(CPUs: validate --local folders, each with its machine.toml)"),
    Flag("--write-accuracy", metavar="FILE.json",
         help="with --fit-on: record the per-kernel cross-device errors in this accuracy file; with "
              "--end-to-end: the end-to-end checks (predict reports them beside its estimates)"),
    Flag("--holdout", choices=("seq",),
         help="with --measurements: fit on every other sequence length, validate on the rest; with "
              "--fit-on: fit on the source's rows of those lengths, validate the target's other lengths "
              "(across devices and across S at once)"),
    Flag("--train-seq", metavar="LIST", help="with --holdout seq: the sequence lengths to fit on, e.g. 2048,8192"),
    Flag("--calibration", metavar="FILE.toml", help="calibration file to use instead of the stored one"),
    Flag("--write-calibration", metavar="FILE.toml",
         help="with --fit: also write the constants fitted on all the rows together (every device of "
              "one kind), with their provenance, to this file"),
    Flag("--plot", metavar="FILE", help="write predicted-vs-measured and error-vs-S plots (.png/.svg)"),
    Flag("--worst", default="10", help="worst rows to list (default 10)"),
    Flag("--max-median-error", metavar="PCT",
         help="exit with code 1 when the overall median absolute error exceeds PCT percent "
              "(an accuracy gate for CI)"),
)
LOCAL_FLAGS = (
    Flag("--out", metavar="FOLDER",
         help="folder for results.csv, predictions.csv, machine.toml (this machine's figures), summary.md, plot"),
    Flag("--quick", switch="on", help="a short run (about 2 minutes)"),
    Flag("--calibrate", switch="on", help="re-run the local calibration microbenchmarks before validating"),
    Flag("--threads", help="threads for the kernels (default: all cores)"),
)


def add_arguments(parser) -> None:
    add_flag(parser.add_mutually_exclusive_group(required=True), *SOURCE_FLAGS)
    add_flag(parser, *FLAGS)
    add_flag(parser.add_argument_group("--local"), *LOCAL_FLAGS)
    _args.add_format_argument(parser)


# Flags that belong to one mode only, and the one-line error when they come with the other.
LOCAL_ONLY = ("out", "quick", "calibrate", "threads")
MEASUREMENTS_ONLY = ("holdout", "train_seq", "write_calibration")
# Rules among the flags of the --measurements mode, checked in this order: (broken?, error).
MEASUREMENT_RULES = (
    (lambda a: a.train_seq and not a.holdout, "--train-seq needs --holdout seq"),
    (lambda a: a.write_calibration and not a.fit, "--write-calibration needs --fit"),
    (lambda a: a.write_calibration and a.holdout, "--write-calibration fits on the whole file: drop --holdout"),
    (lambda a: a.write_accuracy and not a.fit_on,
     "--write-accuracy records a cross-device validation: it needs --fit-on"),
    (lambda a: a.fit_on and (a.fit or a.write_calibration or a.calibration),
     "--fit-on fits on its own file: drop --fit, --write-calibration and --calibration"),
    (lambda a: a.fit_on and a.holdout and a.write_accuracy,
     "--write-accuracy records a whole cross-device validation: drop --holdout"),
)


def run(args) -> int:
    """The checks both modes share, then --local (this machine) or --measurements (a file)."""
    from sparq_sim.outputs import check_output_path
    from sparq_sim.units import parse_number, parse_positive_int

    worst = parse_positive_int(args.worst, "--worst")
    gate = None if args.max_median_error is None else \
        parse_number(args.max_median_error, "--max-median-error", 0, 1e6, "10")
    if args.end_to_end:
        return run_end_to_end(args)
    if args.plot:
        check_output_path(args.plot, flag="--plot")
    report = run_local(args) if args.local else run_measurements(args)
    _print(report, args, worst)
    return _gate(report, gate)


def _only_with(args, names, mode: str) -> None:
    """UserError when any flag of `names` (argparse dests) is set outside its `mode`."""
    if any(getattr(args, n) for n in names):
        flags = ["--" + n.replace("_", "-") for n in names]
        raise UserError(f"{', '.join(flags[:-1])} and {flags[-1]} go with {mode}")


END_TO_END_EXCLUDES = LOCAL_ONLY + MEASUREMENTS_ONLY + ("fit", "fit_on", "calibration", "plot", "max_median_error")


def run_end_to_end(args) -> int:
    """validate --end-to-end: the published whole-decoder speedups against the composed models and
    the ideal bound; with --write-accuracy, recorded for predict."""
    from sparq_sim.calibration import accuracy
    from sparq_sim.outputs import check_output_path
    from sparq_sim.validation import end_to_end

    given = ["--" + n.replace("_", "-") for n in END_TO_END_EXCLUDES if getattr(args, n)]
    if given:
        raise UserError(f"{', '.join(given)} cannot go with --end-to-end (it takes only --write-accuracy and --format)")
    if args.write_accuracy:
        check_output_path(args.write_accuracy, (".json",), flag="--write-accuracy")
    results = end_to_end.check(end_to_end.read_setups())
    if args.write_accuracy:
        accuracy.write(accuracy.record_end_to_end(results, _command_line(), args.write_accuracy), args.write_accuracy)
    if args.format == "json":
        _args.print_json({"end_to_end": results})
    else:
        print(end_to_end.format_table(results))
    return 0


def run_local(args):
    """validate --local: time the kernels on this machine, predict the same cases, compare."""
    from sparq_sim.commands._args import MAX_THREADS
    from sparq_sim.outputs import check_output_folder
    from sparq_sim.units import parse_positive_int

    _only_with(args, MEASUREMENTS_ONLY, "--measurements")
    threads = None if args.threads is None else parse_positive_int(args.threads, "--threads", MAX_THREADS)
    if not args.out:
        raise UserError("--local needs --out FOLDER for its results")
    check_output_folder(args.out)
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise UserError(f"validate --local needs the kernels extra (pip install 'sparq-sim[kernels]'): "
                        f"{exc}") from None
    from sparq_sim.validation import local
    return local.run_local(out=args.out, quick=args.quick, calibrate=args.calibrate, fit=args.fit,
                           threads=threads, plot=args.plot, calibration=args.calibration)


def run_measurements(args):
    """validate --measurements FILE: predicted against the file's measurements (fitted, held out,
    fitted on another device or with the stored constants); the plot and any record it writes are
    written together at the end."""
    from sparq_sim.outputs import OutputSet, check_output_path
    from sparq_sim.progress import progress
    from sparq_sim.validation import core

    _only_with(args, LOCAL_ONLY, "--local")
    for broken, error in MEASUREMENT_RULES:
        if broken(args):
            raise UserError(error)
    if args.write_accuracy:
        check_output_path(args.write_accuracy, (".json",), flag="--write-accuracy")
    if args.write_calibration:
        check_output_path(args.write_calibration, (".toml",), flag="--write-calibration")
    written = [Path(p).resolve() for p in (args.plot, args.write_calibration, args.write_accuracy) if p]
    if len(set(written)) < len(written):
        raise UserError("--plot, --write-calibration and --write-accuracy must name different files")
    stages = ["reading", "fitting" if args.fit or args.holdout else "predicting"] + (["plotting"] if args.plot else [])
    bar = progress(total=len(stages), desc="validate", unit="stage")
    bar.set_postfix_str(stages[0])
    rows = _read_all(args.measurements)
    source = _read_all(args.fit_on) if args.fit_on else None
    bar.update(1)
    bar.set_postfix_str(stages[1])
    with OutputSet() as outputs:
        report = _validate_file(rows, args, outputs, source)
        bar.update(1)
        if args.plot:
            bar.set_postfix_str("plotting")
            core.plot(report, outputs.staged(args.plot))
            bar.update(1)
    bar.close()
    return report


def _gate(report, gate) -> int:
    """1 when the overall median error exceeds --max-median-error, else 0."""
    import sys

    import numpy as np
    if gate is None:
        return 0
    median = float(np.median(report.errors))
    if median > gate:
        print(f"sparq-sim: median absolute error {median:.2f}% exceeds --max-median-error {gate:g}%",
              file=sys.stderr)
        return 1
    return 0


def _read_all(paths: str) -> list:
    """The rows of one or several (comma-separated) measurement files."""
    from sparq_sim.validation.measurements import read_measurements
    rows = []
    for path in [p for p in str(paths).split(",") if p.strip()]:
        rows.extend(read_measurements(path.strip()))
    if not rows:
        raise UserError(f"no measurement rows in {paths}")
    return rows


def _validate_file(rows, args, outputs, source=None):
    """The report of the measurements (fitted, held out, fitted on another device's `source` rows or
    with stored constants); a fitted calibration or accuracy record is staged in `outputs`."""
    from sparq_sim.units import parse_list, parse_seq
    from sparq_sim.validation import core

    train_seqs = set(parse_list(args.train_seq, parse_seq, "--train-seq")) if args.train_seq else None
    if source is not None and args.holdout:
        used = core.training_lengths(source, train_seqs)
        train = [m for m in source if m.seq in used]
        test = [m for m in rows if m.seq not in used]
        if not train:
            raise UserError(f"--fit-on {args.fit_on} has no rows of S in {used}")
        if not test:
            raise UserError(f"{args.measurements} has no rows of S outside {used} to validate")
        report = core.validate(test, fit_on=train,
                               label=f"{args.measurements}: constants fitted on {args.fit_on} rows of S in {used}, "
                                     f"validated on the other {len(test)} rows")
        report.fitted_on = f"{args.fit_on} (S in {', '.join(str(v) for v in used)})"
    elif source is not None:
        report = core.validate(rows, fit_on=source, label=f"{args.measurements}: constants fitted on {args.fit_on}")
        report.fitted_on = str(args.fit_on)
        if args.write_accuracy:
            _write_accuracy(report, source, rows, outputs.staged(args.write_accuracy), args.write_accuracy)
    elif args.holdout:
        train, test, used = core.split_by_seq(rows, train_seqs)
        report = core.validate(test, fit=True, train=train,
                               label=f"{args.measurements}: fitted on S in {used}, validated on the other "
                                     f"{len(test)} rows")
    else:
        if args.write_calibration:
            kinds = {core.device_for(hw).kind for hw in {m.hardware for m in rows}}
            if len(kinds) != 1:
                raise UserError("--write-calibration fits one set of constants: give devices of one kind")
            _write_calibration(rows, args, outputs.staged(args.write_calibration))
        report = core.validate(rows, fit=args.fit, calibration=args.calibration,
                               label=f"{args.measurements}" + (" (fitted on itself)" if args.fit else ""))
    return report


def _command_line() -> str:
    import shlex
    import sys
    return "sparq-sim " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "sparq-sim validate"


def _write_accuracy(report, source, rows, staged, final) -> None:
    """Merge this cross-device validation into the accuracy file `final` (written at `staged`)."""
    from sparq_sim.calibration import accuracy

    def names(ms) -> str:
        return " + ".join(sorted({report.device_names[m.hardware] for m in ms}))
    accuracy.write(accuracy.record(report.to_dict(), f"{names(source)} -> {names(rows)}", _command_line(), final,
                                   report.kind), staged)


def _write_calibration(rows, args, path) -> None:
    """Fit one set of constants on every row (all devices together) and write it."""
    from sparq_sim.calibration import calibrate
    from sparq_sim.validation.core import device_for

    devices = {hw: device_for(hw) for hw in sorted({m.hardware for m in rows})}
    kind = next(iter(devices.values())).kind
    calibrate(rows, devices, path, command=_command_line(), fitted_on=str(args.measurements), family=kind)


def _print(report, args, worst: int) -> None:
    from sparq_sim.validation import core
    if args.format == "json":
        _args.print_json(report.to_dict(worst))
    else:
        print(core.format_report(report, worst))
