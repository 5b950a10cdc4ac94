"""`sparq-sim hw list|show NAME`: the hardware library, every number with its source."""

from __future__ import annotations

from sparq_sim.commands import _args

NAME = "hw"
HELP = "list the hardware library or show one device with its sources"
ORDER = 90


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
        rows = [[d.name, d.kind, ", ".join(d.aliases), d.technology, f"{format_bytes(d.bandwidth_Bps.value)}/s",
                 format_bytes(d.capacity_bytes.value), d.description] for d in devices]
        print(_args.render_table(rows, ["name", "kind", "aliases", "memory", "bandwidth", "capacity", "description"]))
        return 0
    device = load_device(args.name)
    if args.format == "json":
        _args.print_json(device.to_dict())
        return 0
    print(f"{device.name}: {device.description} ({device.kind}, {device.technology})")
    if device.aliases:
        print(f"aliases: {', '.join(device.aliases)}")
    print(f"file: {device.path}")
    rows = [[name, f"{fig.value:.6g}", fig.basis, fig.source] for name, fig in device.figures().items()]
    print(_args.render_table(rows, ["figure", "value", "basis", "source"]))
    return 0
