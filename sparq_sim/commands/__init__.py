"""Subcommands of the sparq-sim CLI, one module each.

A command module defines NAME, HELP, ``add_arguments(parser)`` and ``run(args) -> int``, and
keeps heavy imports inside ``run``. Modules whose names start with ``_`` are helpers.
"""
