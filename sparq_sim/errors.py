"""One exception type for bad user input, so the CLI can report it in one line with exit 2."""


class UserError(ValueError):
    """Input the user can fix (bad flag, unknown device, malformed file).

    The CLI prints ``sparq-sim: error: <message>`` on stderr and exits with code 2;
    library callers get an ordinary ValueError subclass.
    """
