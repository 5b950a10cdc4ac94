"""`sparq-sim measure`: profile this machine's memory path and write the local hardware file.

Runs kernels/membench.py (idle latency, stream read, random row gathers of 64 B .. 8 KiB, numba
over all threads), fits the DRAM simulator's in-flight limits (sparq_sim/simulator/local.py)
and writes a validated hardware TOML to the user cache (~/.cache/sparq-sim/local.toml; honours
SPARQ_SIM_CACHE_DIR and XDG_CACHE_HOME) or --out. Then `--hw local` uses it.
Takes about half a minute; run it on an otherwise idle machine.
"""

from __future__ import annotations

from sparq_sim.commands import _args

NAME = "measure"
HELP = "measure this machine's memory path and write the local hardware profile (--hw local)"
ORDER = 95


def add_arguments(parser) -> None:
    parser.add_argument("--out", metavar="FILE", help="write the profile here instead of the user cache")
    parser.add_argument("--repeats", default="9", help="rounds of measurements, median kept (default 9)")
    parser.add_argument("--buffer-mib", dest="buffer_mib", default="1024",
                        help="buffer size in MiB, far larger than the last-level cache (default 1024)")
    _args.add_format_argument(parser)


def run(args) -> int:
    import sys

    from sparq_sim.errors import UserError
    from sparq_sim.units import parse_positive_int

    repeats = parse_positive_int(args.repeats, "--repeats")
    buffer_mib = parse_positive_int(args.buffer_mib, "--buffer-mib")
    if buffer_mib < 64:
        raise UserError(f"bad --buffer-mib {args.buffer_mib!r}: use at least 64 (far above the LLC)")
    if args.out:   # checked before half a minute of measuring, not after
        from sparq_sim.outputs import check_output_path
        check_output_path(args.out, (".toml",), flag="--out")
    try:
        from sparq_sim.kernels import membench
    except ImportError as exc:
        raise UserError(f"measuring needs numba (pip install 'sparq-sim[kernels]'): {exc}") from None
    from sparq_sim.simulator import local

    quiet = args.format == "json"
    meas = membench.run_all(buffer_mib << 20, repeats,
                            log=None if quiet else (lambda s: print(s, file=sys.stderr)))
    profile = local.build_profile(meas)
    path = local.write_profile(profile, args.out)
    if args.format == "json":
        _args.print_json({"path": str(path), "measurements": meas, "comparison": profile["comparison"],
                          "dram": profile["data"]["dram"]})
    else:
        print(local.comparison_table(profile))
        print(f"\nlocal profile written to {path}; use it with --hw local" if not args.out
              else f"\nprofile written to {path}; use it with --hw {path}")
    return 0
