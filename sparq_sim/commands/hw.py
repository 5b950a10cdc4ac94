"""`sparq-sim hw list|show NAME`: the hardware library, every number with its source."""

from __future__ import annotations

from sparq_sim.schema import Figure
from sparq_sim.tables import render_table
from sparq_sim.commands import _args

NAME = "hw"
HELP = "list the hardware library or show one device with its sources"
ORDER = 90
WIDTH = 100   # `hw list` fits a terminal this wide


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="hw_command", metavar="list|show")
    sub.required = True
    p_list = sub.add_parser("list", help="list known devices")
    _args.add_format_argument(p_list)
    p_show = sub.add_parser("show", help="show one device (name, alias or path to a .toml file)")
    p_show.add_argument("name")
    _args.add_format_argument(p_show)


def run(args) -> int:
    from sparq_sim.hardware import list_devices, load_device
    from sparq_sim.units import format_bytes

    if args.hw_command == "list":
        devices = list_devices()
        if args.format == "json":
            _args.print_json([d.to_dict() for d in devices])
            return 0
        import textwrap
        # fits 100 columns: the description up to its first parenthesis (`hw show` has all of it),
        # the aliases wrapped below the table
        rows = [[d.name, d.kind, d.technology, f"{format_bytes(d.bandwidth_Bps.value)}/s",
                 format_bytes(d.capacity_bytes.value), d.description.split(" (")[0][:40]] for d in devices]
        print(render_table(rows, ["name", "kind", "memory", "bandwidth", "capacity", "description"]))
        aliases = "; ".join(f"{a} = {d.name}" for d in devices for a in d.aliases)
        if aliases:
            print("\n" + textwrap.fill(f"aliases: {aliases}", width=WIDTH, subsequent_indent="  "))
        return 0
    device = load_device(args.name)
    dram = dram_rows(device)
    if args.format == "json":
        out = device.to_dict()
        if dram:
            out["dram"] = device.dram.to_dict()
        _args.print_json(out)
        return 0
    print(f"{device.name}: {device.description} ({device.kind}, {device.technology})")
    if device.aliases:
        print(f"aliases: {', '.join(device.aliases)}")
    print(f"file: {device.path}")
    rows = [[name, f"{fig.value:.6g}", fig.basis, fig.source] for name, fig in device.figures().items()]
    rows += [[f"dram.{name}", value, basis, source] for name, value, basis, source in dram]
    print(render_table(rows, ["figure", "value", "basis", "source"]))
    return 0


def dram_rows(device) -> list[tuple]:
    """The simulator's [dram] section as (name, value, basis, source), checked as the simulator
    checks it (UserError on a bad field); empty for a device without one."""
    if device.dram is None:
        return []
    from sparq_sim.simulator.config import dram_config
    dram_config(device)
    out = []
    for name, entry in device.dram.items():
        if isinstance(entry, Figure):
            out.append((name, f"{entry.value:.6g}", entry.basis, entry.source))
        else:
            out.append((name, str(entry).lower() if isinstance(entry, bool) else str(entry), "", ""))
    return out
