"""The charts of the commands (matplotlib); the files are written by ``sparq_sim.outputs``.

* ``new_figure()``: a Figure on the Agg canvas; ``sparq_sim.outputs.save_figure`` writes it.
* ``roofline_chart``, ``tokens_vs_batch_chart``, ``speedup_heatmap``: the charts of the roofline,
  plan and sweep commands. Each writes its file and returns the series it drew
  (label -> data), so callers and tests can check what is in the picture.

matplotlib is imported inside the plotting functions only (Agg backend, no pyplot), so the
prediction path never loads it.
"""

from __future__ import annotations

from sparq_sim.outputs import save_figure


def new_figure(width: float = 8.0, height: float = 6.0):
    """A matplotlib Figure on the Agg canvas (no pyplot, no display)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout="constrained")


def _si(value: float, unit: str) -> str:
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


METHOD_COLORS = {"dense": "tab:blue", "sparq": "tab:orange"}
PART_MARKERS = {"attention": "o", "step": "s"}
POINTS_SHARE = 0.55   # the enlarged panel's left part holding the points; labels go right of it
LABEL_GAP = 0.05      # label spacing, fraction of the panel's height (10-point text)


def _spread(heights: list[float], gap: float, low: float = 0.03, high: float = 0.97) -> list[float]:
    """Label heights (axes fractions) as close to the sorted `heights` as a spacing of `gap` allows,
    within [low, high]: pushed up past each other, then back down from the top if they overflow."""
    out = []
    for h in heights:
        out.append(max(h, low, out[-1] + gap if out else low))
    top = high
    for i in range(len(out) - 1, -1, -1):
        out[i] = min(out[i], top)
        top = out[i] - gap
    return out


def roofline_chart(device, points: list[dict], path, title: str | None = None) -> dict:
    """Roofline of `device` with its points labelled; returns the series drawn.

    points: dicts with ``label``, ``intensity`` (flop/byte), ``flops_per_s``, ``method``
    ("dense" or "sparq"), ``part`` ("attention" or "step") and optionally ``seq`` and ``batch``.
    Two panels. Left, the whole roofline: the sustained bandwidth slope (solid), the datasheet
    peak slope (dashed), a measured or fitted slope where the device file has one (dotted), a
    compute ceiling per dtype, the points small, and a box round them. Right, that box enlarged
    (decoding sits at about 1 flop/byte, so the points crowd into one spot of the whole chart):
    colour is the method (dense, SparQ), marker the part (filled circle: attention, hollow
    square: whole step), and every point is labelled
    by name in a column beside the points, with a leader line, so no label covers another.
    """
    import numpy as np
    from matplotlib.patches import Rectangle

    series: dict = {}
    peaks = {dtype: fig.value for dtype, fig in device.peak_flops.items()}
    top = max(peaks.values())
    sustained = device.sustained_bandwidth
    xs = [p["intensity"] for p in points] or [1.0]
    ys = [p["flops_per_s"] for p in points] or [sustained]
    lo = 10 ** np.floor(np.log10(max(min(xs) / 10, 1e-4)))
    hi = 10 ** np.ceil(np.log10(max(max(xs) * 10, top / sustained * 10)))
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    fig = new_figure(14, 6.5)
    ax, zoom = fig.subplots(1, 2, width_ratios=[1, 1.35])
    for a in (ax, zoom):
        a.set_xscale("log")
        a.set_yscale("log")
        a.grid(True, which="both", alpha=0.3)
        a.tick_params(labelsize=10)

    slopes = [(sustained, f"sustained bandwidth{' (' + device.achievable_fraction.basis + ')' if device.achievable_fraction.basis in ('measured', 'fitted') else ''} "
               f"{_si(sustained, 'B/s')}", "-", "black"),
              (device.bandwidth_Bps.value, f"datasheet peak {_si(device.bandwidth_Bps.value, 'B/s')}", "--", "gray")]
    slopes += [(value, f"{name} {_si(value, 'B/s')}", ":", "tab:purple")
               for name, value in _measured_bandwidths(device).items()]
    for bw, label, style, color in slopes:
        ax.plot(x, np.minimum(x * bw, top), style, color=color, label=label)
        series[label] = {"kind": "bandwidth", "bytes_per_s": bw}
    ceiling_colors = ["tab:green", "tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    for i, (dtype, value) in enumerate(sorted(peaks.items(), key=lambda kv: kv[1])):
        basis = device.peak_flops[dtype].basis
        label = f"{dtype} peak {_si(value, 'flop/s')}" + (f" ({basis})" if basis in ("measured", "fitted") else "")
        ridge = value / sustained
        xr = x[x >= ridge]
        ax.plot(np.concatenate([[ridge], xr]), np.full(len(xr) + 1, value), "-", lw=1,
                color=ceiling_colors[i % len(ceiling_colors)], alpha=0.8, label=label)
        series[label] = {"kind": "compute", "flops_per_s": value, "dtype": dtype}
    for p in points:
        ax.scatter([p["intensity"]], [p["flops_per_s"]], s=14, zorder=3, color=METHOD_COLORS.get(p["method"], "k"))
    # the enlarged box: the points with a margin; the points fill its left part, labels the right
    x0, x1 = min(xs) / 1.05, max(xs) * 1.05
    y0, y1 = min(ys) / 1.3, max(ys) * 1.3
    box = (x0, x0 * (x1 / x0) ** (1 / POINTS_SHARE), y0, y1)
    ax.add_patch(Rectangle((box[0], box[2]), box[1] - box[0], box[3] - box[2], fill=False, lw=1.2,
                           ec="tab:red", zorder=4))
    ax.set_xlim(lo, hi)
    ax.set_ylim(min(ys + [lo * sustained]) / 3, top * 3)
    ax.set_xlabel("arithmetic intensity (flop/byte)", fontsize=11)
    ax.set_ylabel("attained performance (flop/s)", fontsize=11)
    ax.set_title("whole roofline (red box: enlarged on the right)", fontsize=11)

    xz = np.logspace(np.log10(box[0]), np.log10(box[1]), 50)
    from matplotlib.lines import Line2D
    handles = []
    for bw, label, style, color in slopes:
        zoom.plot(xz, np.minimum(xz * bw, top), style, color=color, lw=1.2)
        handles.append(Line2D([], [], ls=style, color=color, label=label))
    groups: dict = {}
    for p in points:
        groups.setdefault((p["method"], p["part"], p.get("batch")), []).append(p)
    for (method, part, _), group in groups.items():
        group = sorted(group, key=lambda p: p.get("seq", 0))
        color = METHOD_COLORS.get(method, "k")
        zoom.scatter([p["intensity"] for p in group], [p["flops_per_s"] for p in group], s=55, zorder=3,
                     marker=PART_MARKERS.get(part, "o"), edgecolors=color, linewidths=1.5,
                     facecolors=color if part == "attention" else "white")
    zoom.set_xlim(box[0], box[1])
    zoom.set_ylim(box[2], box[3])
    # label column: right of the points, each label as near its point's height as the others allow
    order = sorted(points, key=lambda p: p["flops_per_s"])
    heights = [np.log(p["flops_per_s"] / y0) / np.log(y1 / y0) for p in order]
    for n, p in enumerate(order):
        color = METHOD_COLORS.get(p["method"], "k")
        zoom.annotate(p["label"], (p["intensity"], p["flops_per_s"]),
                      xytext=(POINTS_SHARE + 0.06, _spread(heights, LABEL_GAP)[n]), textcoords="axes fraction",
                      fontsize=10, color=color, va="center",
                      arrowprops=dict(arrowstyle="-", color=color, lw=0.6, alpha=0.7, shrinkB=4))
        series[p["label"]] = {"kind": "point", **{k: p[k] for k in ("intensity", "flops_per_s", "method", "part")}}
    from matplotlib.ticker import FuncFormatter
    handles += [Line2D([], [], ls="", marker="o", color=METHOD_COLORS["dense"], label="dense"),
               Line2D([], [], ls="", marker="o", color=METHOD_COLORS["sparq"], label="SparQ"),
               Line2D([], [], ls="", marker="o", color="gray", label="attention layers"),
               Line2D([], [], ls="", marker="s", markerfacecolor="white", color="gray", label="whole step")]
    # one legend, on the whole roofline: the enlarged panel keeps its space for the labels
    ax.legend(handles=ax.get_legend_handles_labels()[0] + handles[len(slopes):], fontsize=8.5, loc="upper left")
    # plain numbers on the enlarged axes; minor ticks labelled only within a decade (else they crowd)
    for axis, (a, b), fmt in ((zoom.xaxis, box[:2], lambda v, _: f"{v:.3g}"),
                              (zoom.yaxis, box[2:], lambda v, _: _si(v, "flop/s"))):
        axis.set_major_formatter(FuncFormatter(fmt))
        axis.set_minor_formatter(FuncFormatter(fmt if b / a < 10 else (lambda v, _: "")))
    zoom.set_xlabel("arithmetic intensity (flop/byte)", fontsize=11)
    zoom.set_title("the points, enlarged", fontsize=11)
    fig.suptitle(title or f"Roofline: {device.description}", fontsize=12)
    save_figure(fig, path)
    return series


def _measured_bandwidths(device) -> dict:
    """Bandwidth figures measured or fitted on the device ([calibration] entries named *bandwidth*)."""
    out = {}
    if device.bandwidth_Bps.basis in ("measured", "fitted"):
        out[f"{device.bandwidth_Bps.basis} peak"] = device.bandwidth_Bps.value
    for key, figure in device.calibration.items():
        if "bandwidth" in key.lower() and figure.basis in ("measured", "fitted") and figure.value > 0:
            out[f"{key} ({figure.basis})"] = figure.value
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
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    ticks = sorted({b for batches, _ in curves.values() for b in batches if b & (b - 1) == 0}
                   | {limit for limit in limits.values() if limit})
    if ticks:   # the batches themselves as plain numbers, not powers of two written 2^n
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))
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


def latency_target_chart(target, path, title: str) -> dict:
    """Tokens/s per GPU against tokens/s per user: every configuration (faint), each method's
    Pareto front (line), the TPOT target (vertical line at 1 / TPOT) and the best point within
    the targets (star). `target` is a ``sparq_sim.slo.TargetPlan``."""
    fig = new_figure(8.5, 5.8)
    ax = fig.add_subplot(1, 1, 1)
    colours = {"dense": "tab:blue", "sparq": "tab:orange"}
    series = {}
    for method, colour in colours.items():
        pts = [p for p in target.points if p.method == method]
        if not pts:
            continue
        ax.scatter([p.tokens_per_s_per_user for p in pts], [p.tokens_per_s_per_gpu for p in pts],
                   s=8, color=colour, alpha=0.25)
        front = target.fronts[method]
        xs = [p.tokens_per_s_per_user for p in front]
        ys = [p.tokens_per_s_per_gpu for p in front]
        name = "dense" if method == "dense" else "SparQ"
        over = "batch and TP" if method == "dense" else "batch, compression and TP"
        ax.plot(xs, ys, "o-", ms=3, color=colour, label=f"{name} (Pareto front over {over})")
        series[name] = {"tokens_per_s_per_user": xs, "tokens_per_s_per_gpu": ys}
        best = target.best[method]
        if best is not None:
            cost = best.cost_per_million(target.gpu_hour_cost)
            text = f"{best.label}, TP {best.tp}, batch {best.batch}" + (f"\n${cost:.3g} per M tokens" if cost else "")
            ax.scatter([best.tokens_per_s_per_user], [best.tokens_per_s_per_gpu], marker="*", s=180,
                       color=colour, edgecolor="black", zorder=5)
            ax.annotate(text, (best.tokens_per_s_per_user, best.tokens_per_s_per_gpu), fontsize=7,
                        xytext=(-10, 4), textcoords="offset points", ha="right", va="bottom")
            series[f"{name} best"] = best.to_dict(target.gpu_hour_cost)
    ax.axvline(1.0 / target.tpot_slo_s, ls="--", color="gray")
    ax.annotate(f"TPOT target {target.tpot_slo_s * 1e3:.3g} ms (slower users miss it)",
                (1.0 / target.tpot_slo_s, 0.98), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                xytext=(-3, 0), textcoords="offset points", ha="right", va="top")
    ax.axvspan(ax.get_xlim()[0], 1.0 / target.tpot_slo_s, color="gray", alpha=0.08)
    ax.set_xscale("log")
    ax.set_yscale("log")
    gpu = [p.tokens_per_s_per_gpu for p in target.points]
    if gpu:
        ax.set_ylim(min(gpu) / 1.3, max(gpu) * 1.6)      # room for the best points' labels
    from matplotlib.ticker import FuncFormatter, LogLocator
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("tokens/s per user (1 / TPOT)")
    ax.set_ylabel("tokens/s per GPU")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize=8, loc="lower left")
    save_figure(fig, path)
    return series


def methods_chart(points: list[dict], path, title: str) -> dict:
    """Tokens/s against KV memory, one labelled point per method (hollow: no published quality)."""
    fig = new_figure(8, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    series = {}
    for p in points:
        known = p.get("retention") is not None
        ax.scatter([p["memory_gb"]], [p["tokens_per_s"]], s=50, zorder=3,
                   facecolors="tab:blue" if known else "none", edgecolors="tab:blue")
        label = p["label"] + (f" (ret. {p['retention']:.2f})" if known else "")
        ax.annotate(label, (p["memory_gb"], p["tokens_per_s"]), textcoords="offset points", xytext=(5, 4),
                    fontsize=7)
        series[p["label"]] = {k: p[k] for k in ("memory_gb", "tokens_per_s", "retention")}
    ax.set_xlabel("KV memory (GB)")
    ax.set_ylabel("tokens/s (whole batch)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    save_figure(fig, path)
    return series


def validation_chart(kernels: list, seqs, measured, predicted, errors, title: str, path) -> None:
    """Predicted against measured (log-log, one colour per kernel) and error against S, for
    ``validate --plot``; written atomically (.png or .svg). Arrays are per measured row."""
    import numpy as np
    from matplotlib import colormaps

    names = sorted(set(kernels))
    cmap = colormaps["tab20" if len(names) > 10 else "tab10"]
    fig = new_figure(13, 5.5)
    ax1, ax2 = fig.subplots(1, 2)
    kernels = np.array(kernels)
    for n, kern in enumerate(names):
        sel = kernels == kern
        color = cmap(n % cmap.N)
        ax1.scatter(measured[sel], predicted[sel], s=9, color=color, label=kern, alpha=0.75)
        jitter = 1 + 0.3 * (n - len(names) / 2) / max(1, len(names))
        ax2.scatter(seqs[sel] * jitter, errors[sel], s=9, color=color, alpha=0.75)
    lo, hi = measured.min() * 0.7, measured.max() * 1.4
    ax1.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax1.plot([lo, hi], [lo * 1.1, hi * 1.1], "k:", lw=0.6)
    ax1.plot([lo, hi], [lo / 1.1, hi / 1.1], "k:", lw=0.6)
    ax1.set(xscale="log", yscale="log", xlabel="measured time per call (s)", ylabel="predicted (s)",
            title="predicted against measured (dotted: +-10%)")
    ax1.legend(fontsize=7, markerscale=1.5, ncol=1 if len(names) < 8 else 2)
    ax2.set(xscale="log", xlabel="sequence length S (kernels side by side)", ylabel="absolute error (%)",
            title=f"error against S (median {np.median(errors):.1f}%)")
    ax2.axhline(10, color="k", ls=":", lw=0.6)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
