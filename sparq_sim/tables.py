"""Plain-text tables for every command's human-readable output."""


def render_table(rows: list[list[str]], header: list[str] | None = None) -> str:
    """Plain aligned columns: first column left, the rest right."""
    table = ([header] if header else []) + rows
    widths = [max(len(str(r[i])) for r in table) for i in range(len(table[0]))]
    lines = []
    for n, row in enumerate(table):
        cells = [str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if header and n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
