#!/usr/bin/env python3
"""Turns the table of a serve sweep (`command: SERVE`) into plots and a page.

    python3 analysis/plot_serve.py RESULTS.csv --out=DIR [--title=TEXT]

RESULTS is the table `shardsim sweep` (or `shardsim merge`) wrote for a sweep
whose points run `shardsim serve`, CSV or JSON Lines (`plot_sweep.py` hands
such a table here itself). DIR receives:

  latency_vs_rate.png  p50 and p99 time to first token and time per output
                       token against the request rate, a line per
                       configuration (the swept fields other than the rate:
                       strategy, GPU, ...), the SLO targets as dashed lines
  goodput_vs_rate.png  goodput (requests/s within every SLO target) and SLO
                       attainment against the request rate
  index.html           both plots, the table of results and the skipped
                       points with their reasons

The x axis is the offered rate (`rate_per_s`, from
serving.arrival.rate_per_s). Points with no rate setting (a trace, or every
request at once) are placed at the rate they achieved (`requests_per_s`),
and the axis says so. When every configuration has a single rate, each plot
is a bar per configuration instead of a line.

Needs pandas and matplotlib (Debian: apt-get install python3-pandas
python3-matplotlib). Only points that ran (status "ok") are plotted.
"""

import csv
import html
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep_table  # noqa: E402  (the helpers plot_sweep.py shares)
from sweep_table import swept_columns  # noqa: E402,F401  (tests use it from here)

# Columns only a serve table has: how a table is recognised.
SERVE_MARKERS = ["rate_per_s", "ttft_p50_s", "goodput_requests_per_s"]
RATE_PATH = "serving.arrival.rate_per_s"
TEXT = {"key", "status", "reason", "model", "cluster", "gpu", "interconnect",
        "router", "arrival", "sweep_id", "chunked_prefill", "deployment",
        "what_ran"}
PANELS = [  # (column, title, SLO column)
    ("ttft_p50_s", "TTFT p50", "slo_ttft_s"),
    ("ttft_p99_s", "TTFT p99", "slo_ttft_s"),
    ("tpot_p50_s", "TPOT p50", "slo_tpot_s"),
    ("tpot_p99_s", "TPOT p99", "slo_tpot_s"),
]
PLOTS = [
    ("latency_vs_rate.png", "Latency against request rate"),
    ("goodput_vs_rate.png", "Goodput and SLO attainment against request rate"),
]


def is_serve_columns(columns):
    return all(c in columns for c in SERVE_MARKERS)


def is_serve_table(path):
    """True when the file at `path` is a serve sweep's table (by its
    header, or its first JSON row's keys)."""
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    if first.lstrip().startswith("{"):
        try:
            return is_serve_columns(list(json.loads(first).keys()))
        except json.JSONDecodeError:
            return False
    return is_serve_columns(next(csv.reader([first]), []))


def read_table(path):
    """The table as a DataFrame, from CSV or JSON Lines (by its first byte)."""
    df = sweep_table.load_table(path, "serve sweep", SERVE_MARKERS)
    swept = swept_columns(df)
    for column in df.columns:
        if column not in TEXT and column not in swept:
            df[column] = pd.to_numeric(df[column], errors="coerce")
    return df


def config_label(row, paths):
    """A line's name: the swept fields other than the rate ("tp=4 dp=2",
    "topology=dgx_a100"), or the strategy and GPU when only the rate
    varies."""
    if not paths:
        return (f"tp{int(row['tp'])} pp{int(row['pp'])} dp{int(row['dp'])} "
                f"on {row['gpu']}")
    parts = []
    # Swept pool sizes (pools[0].parallelism.dp, ...) are named by the
    # deployment they make ("P tp2x3 + D tp2x1"), in one part.
    if any(p.startswith("pools[") for p in paths) and "deployment" in row:
        parts.append(str(row["deployment"]))
        paths = [p for p in paths if not p.startswith("pools[")]
    for p in paths:
        part = sweep_table.short(p, row[p])
        if p.endswith("topology_file"):  # name the GPU, not just the file
            part = f"{part.split('=', 1)[1]} ({row['gpu']})"
        parts.append(part)
    return " ".join(parts)


def add_series(ok, swept):
    """Adds "series" (the line a point belongs to) and "x" (its rate), and
    says what x is."""
    ok = ok.copy()
    paths = [p for p in swept if p != RATE_PATH]
    ok["series"] = [config_label(row, paths) for _, row in ok.iterrows()]
    if ok["rate_per_s"].notna().all():
        ok["x"] = ok["rate_per_s"]
        xlabel = "offered request rate (requests/s)"
    else:
        ok["x"] = ok["rate_per_s"].fillna(ok["requests_per_s"])
        xlabel = ("request rate (requests/s; achieved where the point has "
                  "no rate setting: a trace or all at once)")
    return ok, xlabel


def curves(ok, column):
    """[(series, xs, ys)] in series order, each sorted by x: the points a
    line of `column` against the rate joins."""
    out = []
    for series, group in sorted(ok.groupby("series"), key=lambda i: i[0]):
        group = group.sort_values("x")
        out.append((series, group["x"].tolist(), group[column].tolist()))
    return out


def single_rate(ok):
    """True when no configuration has two rates: lines would be dots."""
    return ok.empty or (ok.groupby("series")["x"].nunique() <= 1).all()


def bar_title(ok, what):
    """The title of a plot with a bar per configuration: what it shows and
    at which load."""
    rates = ok["rate_per_s"].dropna().unique()
    if ok["rate_per_s"].isna().all():
        return f"{what} by configuration (no rate setting: a trace or all at once)"
    if len(rates) == 1:
        return f"{what} by configuration at {rates[0]:g} requests/s"
    return f"{what} by configuration (one rate each)"


def slo_target(ok, column):
    """The SLO target of `column` when every point shares one, else None."""
    if column not in ok.columns:
        return None
    values = ok[column].dropna().unique()
    return float(values[0]) if len(values) == 1 else None


def drawn(ax):
    """What an axes shows: [(label, xs, ys)] per line (SLO lines included)
    or bar series, for tests and for the page."""
    out = []
    for line in ax.get_lines():
        out.append((line.get_label(), [float(v) for v in line.get_xdata()],
                    [float(v) for v in line.get_ydata()]))
    for container in ax.containers:
        out.append((container.get_label(),
                    [p.get_x() + p.get_width() / 2 for p in container],
                    [float(p.get_height()) for p in container]))
    return out


def _panel(ax, ok, column, scale, ylabel, bars):
    if bars:
        rows = ok.sort_values("series")
        values = rows[column] * scale
        ax.bar(range(len(rows)), values, label=ylabel,
               color=[f"C{i}" for i in range(len(rows))])
        for i, value in enumerate(values):
            if pd.isna(value):  # nothing completed: say so, not a gap
                ax.text(i, 0, "no request\ncompleted", ha="center",
                        va="bottom", fontsize=7, color="gray")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(rows["series"], rotation=20, ha="right",
                           fontsize=8)
        return
    for series, xs, ys in curves(ok, column):
        ax.plot(xs, [y * scale for y in ys], marker="o", label=series)


def plot_latency(ok, xlabel, path):
    """Four panels (TTFT and TPOT, p50 and p99) against the rate; returns
    {panel title: drawn(axes)}."""
    title = "Latency against request rate"
    if ok.empty:
        sweep_table.empty_plot(path, title, "no point ran")
        return {}
    bars = single_rate(ok)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), squeeze=False)
    shown = {}
    for ax, (column, name, slo) in zip(axes.flat, PANELS):
        _panel(ax, ok, column, 1e3, f"{name}, ms", bars)
        target = slo_target(ok, slo)
        if target is not None:
            ax.axhline(target * 1e3, color="red", linestyle="--",
                       linewidth=1, label=f"SLO {target * 1e3:g} ms")
        ax.set_title(name)
        ax.set_ylabel(f"{name}, ms")
        if not bars:
            ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        shown[name] = drawn(ax)
    handles, labels = [], []
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels and not bars:
                handles.append(h)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="center left", fontsize="small",
                   bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(bar_title(ok, "Latency") if bars else title)
    fig.tight_layout()
    sweep_table.save_figure(fig, path)
    return shown


def plot_goodput(ok, xlabel, path):
    """Goodput and SLO attainment against the rate; returns {panel title:
    drawn(axes)}."""
    title = "Goodput and SLO attainment against request rate"
    if ok.empty:
        sweep_table.empty_plot(path, title, "no point ran")
        return {}
    bars = single_rate(ok)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), squeeze=False)
    good, share = axes.flat
    _panel(good, ok, "goodput_requests_per_s", 1.0, "goodput", bars)
    if not bars:
        # Goodput can at best equal the offered rate.
        top = float(ok["x"].max())
        good.plot([0, top], [0, top], color="gray", linestyle=":",
                  linewidth=1, label="every request within the SLO")
        good.set_xlabel(xlabel, fontsize=8)
        share.set_xlabel(xlabel, fontsize=8)
    good.set_title("Goodput")
    good.set_ylabel("requests/s within every SLO target")
    _panel(share, ok, "slo_attainment", 100.0, "SLO attainment", bars)
    share.set_title("SLO attainment")
    share.set_ylabel("% of requests within every SLO target")
    share.set_ylim(0, 105)
    for ax in (good, share):
        ax.grid(True, alpha=0.3)
    good.set_ylim(bottom=0)
    targets = [f"{name} {value * 1e3:g} ms" for name, value in
               (("TTFT", slo_target(ok, "slo_ttft_s")),
                ("TPOT", slo_target(ok, "slo_tpot_s")),
                ("E2E", slo_target(ok, "slo_e2e_s"))) if value is not None]
    suffix = f" (SLO: {', '.join(targets)})" if targets else " (no SLO set)"
    if not bars:
        handles, labels = good.get_legend_handles_labels()
        fig.legend(handles, labels, loc="center left", fontsize="small",
                   bbox_to_anchor=(1.0, 0.5))
    fig.suptitle((bar_title(ok, "Goodput and SLO attainment") if bars
                  else title) + suffix)
    fig.tight_layout()
    sweep_table.save_figure(fig, path)
    return {"Goodput": drawn(good), "SLO attainment": drawn(share)}


def write_page(df, ok, swept, source, title, path):
    skipped = df[df["status"] != "ok"]
    results = ["series", "x", "gpu", "tp", "pp", "dp", "requests", "completed",
               "refused", "requests_per_s", "output_tokens_per_s_per_gpu",
               "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
               "e2e_p99_s", "queue_p99_s", "slo_attainment",
               "goodput_requests_per_s", "preemptions", "kv_peak_fraction",
               "comm_overhead"]
    shown = ok[["point"] + [c for c in results if c in ok.columns]]
    shown = shown.rename(columns={"x": "rate_per_s"})
    sweep_table.write_page(
        path, title,
        f"{len(df)} serve points from <code>{html.escape(source)}</code>: "
        f"{len(ok)} ran, {len(skipped)} skipped.",
        PLOTS, shown, df, swept)


def main(argv):
    args = sweep_table.parse_args(
        argv, "Plots and an HTML page from a shardsim serve sweep table.")
    try:
        df = read_table(args.table)
    except (OSError, ValueError) as e:
        print(f"plot_serve: {e}", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    swept = swept_columns(df)
    ok, xlabel = add_series(df[df["status"] == "ok"], swept)
    title = sweep_table.page_title(args)
    plot_latency(ok, xlabel, os.path.join(args.out, PLOTS[0][0]))
    plot_goodput(ok, xlabel, os.path.join(args.out, PLOTS[1][0]))
    write_page(df, ok, swept, args.table, title,
               os.path.join(args.out, "index.html"))
    print(f"wrote {len(PLOTS)} plots and index.html to {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
