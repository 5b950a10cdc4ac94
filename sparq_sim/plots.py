"""Output files and charts shared by the commands: atomic writers and matplotlib plots.

* ``check_output_path``, ``atomic_write``, ``write_text_atomic``: from ``sparq_sim.outputs``
  (output checks before any work, atomic and all-or-nothing writes), re-exported here.
* ``save_figure(fig, path)``: a matplotlib figure written atomically, format from the extension.
* ``roofline_chart``, ``tokens_vs_batch_chart``, ``speedup_heatmap``: the charts of the roofline,
  plan and sweep commands. Each writes its file and returns the series it drew
  (label -> data), so callers and tests can check what is in the picture.

matplotlib is imported inside the plotting functions only (Agg backend, no pyplot), so the
prediction path never loads it.
"""

from __future__ import annotations

from sparq_sim.outputs import PLOT_EXTENSIONS, atomic_write, check_output_path, write_text_atomic  # noqa: F401


def new_figure(width: float = 8.0, height: float = 6.0):
    """A matplotlib Figure on the Agg canvas (no pyplot, no display)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig, path) -> None:
    """Write a figure atomically in the format its extension names (.png or .svg)."""
    p = check_output_path(path)
    with atomic_write(p, binary=True) as f:
        fig.savefig(f, format=p.suffix.lower().lstrip("."), dpi=120)


def _si(value: float, unit: str) -> str:
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def roofline_chart(device, points: list[dict], path, title: str | None = None) -> dict:
    """Roofline of `device` with labelled points; returns the series drawn.

    points: dicts with ``label``, ``intensity`` (flop/byte), ``flops_per_s``, ``method``
    ("dense" or "sparq"), ``part`` ("attention" or "step") and optionally ``case`` (points of one
    case share a colour). Points are numbered; when they span less than 30x in intensity an
    enlarged inset shows them.
    Lines: the sustained bandwidth slope (solid), the datasheet peak slope (dashed), a measured or
    fitted slope where the device file has one, and a compute ceiling per dtype.
    """
    import numpy as np

    series: dict = {}
    xs = [p["intensity"] for p in points] or [1.0]
    lo = 10 ** np.floor(np.log10(max(min(xs) / 10, 1e-4)))
    peaks = {dtype: fig.value for dtype, fig in device.peak_flops.items()}
    ridge_max = max(peaks.values()) / device.sustained_bandwidth
    hi = 10 ** np.ceil(np.log10(max(max(xs) * 10, ridge_max * 10)))
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    top = max(peaks.values())
    fig = new_figure(9, 6.5)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xscale("log")
    ax.set_yscale("log")

    def slope(bw, label, style, color):
        y = np.minimum(x * bw, top)
        ax.plot(x, y, style, color=color, label=label)
        series[label] = {"kind": "bandwidth", "bytes_per_s": bw}

    bw_basis = device.achievable_fraction.basis
    calibrated = bw_basis in ("measured", "fitted")
    slope(device.sustained_bandwidth,
          f"sustained bandwidth{' (' + bw_basis + ')' if calibrated else ''} {_si(device.sustained_bandwidth, 'B/s')}",
          "-", "black")
    slope(device.bandwidth_Bps.value, f"datasheet peak {_si(device.bandwidth_Bps.value, 'B/s')}", "--", "gray")
    for name, value in _measured_bandwidths(device).items():
        slope(value, f"{name} {_si(value, 'B/s')}", ":", "tab:purple")
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:brown", "tab:pink"]
    for i, (dtype, value) in enumerate(sorted(peaks.items(), key=lambda kv: kv[1])):
        basis = device.peak_flops[dtype].basis
        label = f"{dtype} peak {_si(value, 'flop/s')}" + (f" ({basis})" if basis in ("measured", "fitted") else "")
        ridge = value / device.sustained_bandwidth
        xr = x[x >= ridge]
        ax.plot(np.concatenate([[ridge], xr]), np.full(len(xr) + 1, value), "-", lw=1,
                color=colors[i % len(colors)], alpha=0.7, label=label)
        series[label] = {"kind": "compute", "flops_per_s": value, "dtype": dtype}
    markers = {("dense", "attention"): "o", ("sparq", "attention"): "s",
               ("dense", "step"): "^", ("sparq", "step"): "D"}
    cases = list(dict.fromkeys(p.get("case", "") for p in points))
    palette = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan",
               "tab:olive", "tab:pink", "tab:gray"]
    # Points of one case share a colour; method and part set the marker (filled: attention,
    # hollow: whole step). Every point has its own legend entry, and a number beside it.
    inset = None
    px = [p["intensity"] for p in points]
    if points and max(px) / min(px) < 30:
        inset = ax.inset_axes([0.06, 0.52, 0.42, 0.42])
        for bw, style, color in ((device.sustained_bandwidth, "-", "black"),
                                 (device.bandwidth_Bps.value, "--", "gray")):
            xi = np.logspace(np.log10(min(px) / 1.5), np.log10(max(px) * 1.5), 20)
            inset.plot(xi, xi * bw, style, color=color)
        inset.set_xscale("log")
        inset.set_yscale("log")
        inset.set_title("points, enlarged", fontsize=7)
        inset.tick_params(labelsize=6)
        inset.grid(True, which="both", alpha=0.3)
    for n, p in enumerate(points, start=1):
        color = palette[cases.index(p.get("case", "")) % len(palette)]
        style = dict(marker=markers[(p["method"], p["part"])], s=40, zorder=3,
                     edgecolors=color, facecolors="none" if p["part"] == "step" else color)
        for target in (ax, inset) if inset is not None else (ax,):
            target.scatter([p["intensity"]], [p["flops_per_s"]], **style,
                           label=f"{n}: {p['label']}" if target is ax else None)
            target.annotate(str(n), (p["intensity"], p["flops_per_s"]), textcoords="offset points",
                            xytext=(4, 3), fontsize=6)
        series[p["label"]] = {"kind": "point", **{k: p[k] for k in ("intensity", "flops_per_s", "method", "part")}}
    ax.set_xlim(lo, hi)
    ymin = min([p["flops_per_s"] for p in points] + [lo * device.sustained_bandwidth]) / 3
    ax.set_ylim(ymin, top * 3)
    ax.set_xlabel("arithmetic intensity (flop/byte)")
    ax.set_ylabel("attainable performance (flop/s)")
    ax.set_title(title or f"Roofline: {device.description}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, loc="lower right", ncol=2 if len(points) > 8 else 1)
    save_figure(fig, path)
    return series


def _measured_bandwidths(device) -> dict:
    """Bandwidth figures measured or fitted on the device ([calibration] entries named *bandwidth*)."""
    out = {}
    if device.bandwidth_Bps.basis in ("measured", "fitted"):
        out[f"{device.bandwidth_Bps.basis} peak"] = device.bandwidth_Bps.value
    calibration = (device.raw or {}).get("calibration", {})
    if isinstance(calibration, dict):
        for key, entry in calibration.items():
            if (isinstance(entry, dict) and "bandwidth" in key.lower()
                    and entry.get("basis") in ("measured", "fitted")
                    and isinstance(entry.get("value"), (int, float)) and entry["value"] > 0):
                out[f"{key} ({entry['basis']})"] = float(entry["value"])
    return out


def tokens_vs_batch_chart(curves: dict, limits: dict, path, title: str) -> dict:
    """Tokens/s against batch per method; vertical lines at each method's largest batch."""
    fig = new_figure(8, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    series = {}
    for label, (batches, rates) in curves.items():
        line, = ax.plot(batches, rates, "o-", label=label, ms=3)
        series[label] = {"batch": list(batches), "tokens_per_s": list(rates)}
    for method, limit in limits.items():
        if limit:
            ax.axvline(limit, ls=":", color="gray")
            ax.annotate(f"{method} max batch {limit}", (limit, ax.get_ylim()[0]), rotation=90,
                        fontsize=7, xytext=(-10, 5), textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch (sequences)")
    ax.set_ylabel("tokens/s (whole batch)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    save_figure(fig, path)
    return series


def speedup_heatmap(panels: dict, path, title: str) -> dict:
    """One heatmap per panel: rows are S, columns are settings, colour is speedup.

    panels: name -> {"rows": [S...], "cols": [label...], "values": [[speedup or None]], "notes":
    [[text]]}. Cells without a value (skipped combinations) are left blank.
    """
    import numpy as np

    n = len(panels)
    fig = new_figure(max(6, 1.2 * max(len(p["cols"]) for p in panels.values()) + 2) * min(n, 2) / 1.3,
                     1 + 0.5 * max(len(p["rows"]) for p in panels.values()) * ((n + 1) // 2) + 1.5)
    series = {}
    for i, (name, p) in enumerate(panels.items()):
        ax = fig.add_subplot((n + 1) // 2, min(n, 2), i + 1)
        data = np.array([[np.nan if v is None else v for v in row] for row in p["values"]], dtype=float)
        image = ax.imshow(data, aspect="auto", cmap="viridis", origin="lower")
        ax.set_xticks(range(len(p["cols"])), p["cols"], rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(p["rows"])), [str(r) for r in p["rows"]], fontsize=7)
        ax.set_xlabel("SparQ setting (r, k)")
        ax.set_ylabel("sequence length S")
        ax.set_title(name, fontsize=9)
        for y, row in enumerate(p["values"]):
            for x, v in enumerate(row):
                if v is not None:
                    note = p.get("notes", [[""] * len(row)] * len(p["values"]))[y][x]
                    ax.text(x, y, f"{v:.2f}x" + (f"\n{note}" if note else ""), ha="center", va="center",
                            fontsize=6, color="white")
        fig.colorbar(image, ax=ax, label="speedup")
        series[name] = {"rows": list(p["rows"]), "cols": list(p["cols"]), "values": p["values"]}
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
    return series
