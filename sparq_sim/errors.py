"""Bad user input: one exception type and one argparse parser, so every entry point reports it in one line
with exit 2."""

import argparse


class UserError(ValueError):
    """Input the user can fix (bad flag, unknown device, malformed file).

    The CLI prints ``sparq-sim: error: <message>`` on stderr and exits with code 2;
    library callers get an ordinary ValueError subclass.
    """


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (exit 2) instead of usage plus error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
