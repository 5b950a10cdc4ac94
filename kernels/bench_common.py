"""What the benchmark scripts (bench_cpu, bench_triton) share: their parser with the common
shape and repetition flags, comma-separated lists checked with one error line, the JSON file."""

from __future__ import annotations

import json
import sys


def parser(prog: str, doc: str, *, r: int, dtype: str, warmup: int, repeats: int, dtype_choices=None,
           repeats_help: str | None = None):
    """A one-line-error parser with --heads, --head-dim, --r, --dtype, --warmup, --repeats, --json."""
    from sparq_sim.errors import OneLineParser
    p = OneLineParser(prog=prog, description=doc.split("\n")[0])
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--r", type=int, default=r)
    p.add_argument("--dtype", default=dtype, choices=dtype_choices)
    p.add_argument("--warmup", type=int, default=warmup)
    p.add_argument("--repeats", type=int, default=repeats, help=repeats_help)
    p.add_argument("--json", help="also write the results here")
    return p


def comma_lists(prog: str, lists: dict) -> dict | None:
    """{name: [parse(item) for each comma-separated item]} for `lists` = {name: (text, parse)};
    None after printing the one error line when an item is bad."""
    from sparq_sim.errors import UserError
    try:
        return {name: [parse(x) for x in text.split(",")] for name, (text, parse) in lists.items()}
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return None


def write_json(path: str | None, data: dict) -> None:
    """The results as indented JSON, when a path was given."""
    if path:
        with open(path, "w") as fh:
            json.dump(data, fh, indent=2)
