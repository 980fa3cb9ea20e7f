#!/usr/bin/env python3
"""Turns a `shardsim sweep` result table into plots and one HTML page.

    python3 analysis/plot_sweep.py RESULTS.csv --out=DIR [--title=TEXT]

RESULTS is the table `shardsim sweep` (or `shardsim merge`) wrote, CSV or
JSON Lines. DIR receives:

  throughput_vs_batch.png  output tokens/s against batch size, a line per
                           parallelism strategy (and GPU, when it varies),
                           a panel per prompt length
  pareto.png               time per output token against output tokens/s per
                           GPU, every point, with the Pareto front drawn
  memory.png               the peak GPU's memory, stacked by component, with
                           its capacity as a line
  comm_share.png           communication share of the GPUs' time by strategy
                           and cluster (interconnect)
  index.html               the four plots, the table of results and the
                           skipped points with their reasons

A serve sweep's table (`command: SERVE`) is handed to plot_serve.py, which
draws latency and goodput against the request rate.

Needs pandas and matplotlib (Debian: apt-get install python3-pandas
python3-matplotlib). Only points that ran (status "ok") are plotted; the
throughput and Pareto plots leave out points whose memory does not fit.
"""

import html
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sweep_table import (  # noqa: E402,F401  (tests use some from here)
    FIRST_RESULT, LEADING, SORT_SCRIPT, STYLE, empty_plot, html_table,
    load_table, not_a_table, page_title, parse_args, save_figure, short,
    swept_columns, write_page as write_html_page)
# Memory components of the peak GPU, bottom to top of each bar.
COMPONENTS = [
    ("weights_bytes", "weights"),
    ("kv_cache_bytes", "KV cache"),
    ("activations_bytes", "activations"),
    ("comm_buffers_bytes", "comm buffers"),
    ("runtime_overhead_bytes", "runtime overhead"),
]
NUMERIC = [
    "point", "num_gpus", "tp", "pp", "dp", "micro_batches", "batch_size",
    "prompt_len", "output_len", "peak_memory_bytes", "peak_memory_gpu",
    "peak_memory_largest_bytes", "capacity_bytes", "over_by_bytes",
    "ttft_mean_s", "ttft_p99_s", "tpot_mean_s", "tpot_p50_s", "tpot_p99_s",
    "total_s", "output_tokens", "output_tokens_per_s",
    "output_tokens_per_s_per_gpu", "comm_overhead",
    "cost_per_million_output_tokens",
] + [column for column, _ in COMPONENTS]
GIB = float(1 << 30)
MAX_BARS = 40  # memory bars beyond this are unreadable: take a spread
MAX_PANELS = 6


def read_table(path):
    """The table as a DataFrame, from CSV or JSON Lines (by its first byte)."""
    df = load_table(path, "sweep", [])
    for column in NUMERIC:
        if column in df.columns:
            df[column] = pd.to_numeric(df[column], errors="coerce")
    df["fits"] = df["fits"].map(
        {True: True, False: False, "true": True, "false": False})
    return df


def strategy(row):
    return f"tp{int(row.tp)} pp{int(row.pp)} dp{int(row.dp)}"


def add_labels(ok):
    """Adds "strategy" and "series": the strategy, plus the GPU and output
    length when those vary, so a line never mixes two of them."""
    ok = ok.copy()
    ok["strategy"] = ok.apply(strategy, axis=1)
    series = ok["strategy"]
    if ok["gpu"].nunique() > 1 or ok["cluster"].nunique() > 1:
        series = series + " on " + ok["cluster"].astype(str)
    if ok["output_len"].nunique() > 1:
        series = series + ", out " + ok["output_len"].astype(int).astype(str)
    ok["series"] = series
    return ok


def spread(values, count):
    """At most `count` of the sorted `values`, evenly spread, ends kept."""
    values = sorted(values)
    if len(values) <= count:
        return values
    step = (len(values) - 1) / (count - 1)
    return [values[round(i * step)] for i in range(count)]


def batch_ticks(points):
    """The batch sizes of `points`, sorted, as ints."""
    return sorted(int(b) for b in points["batch_size"].dropna().unique())


def plot_throughput(ok, path):
    title = "Throughput against batch size (points that fit in memory)"
    fit = ok[ok["fits"] == True]  # noqa: E712 (NaN-safe)
    if fit.empty:
        empty_plot(path, title, "no point fits in GPU memory")
        return
    prompts = spread(fit["prompt_len"].unique(), MAX_PANELS)
    cols = min(3, len(prompts))
    rows = math.ceil(len(prompts) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.2 * rows),
                             squeeze=False)
    for ax, prompt in zip(axes.flat, prompts):
        panel = fit[fit["prompt_len"] == prompt]
        for series, group in sorted(panel.groupby("series"),
                                    key=lambda item: item[0]):
            # Other swept fields may repeat a batch size: keep the best.
            best = group.groupby("batch_size")["output_tokens_per_s"].max()
            ax.plot(best.index, best.values, marker="o", label=series)
        ax.set_xscale("log", base=2)
        # Ticks at the batch sizes swept, as integers: log2 ticks fall on
        # powers of two whether or not they were swept, and print as 2^n.
        ticks = batch_ticks(panel)
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(f"prompt {int(prompt)} tokens")
        ax.set_xlabel("batch size (sequences)")
        ax.set_ylabel("output tokens/s (all GPUs)")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(prompts):]:
        ax.set_axis_off()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", fontsize="small",
               bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def pareto_front(points):
    """Rows of `points` no other row beats on both throughput per GPU
    (higher is better) and time per output token (lower is better)."""
    ordered = points.sort_values(["output_tokens_per_s_per_gpu", "tpot_mean_s"],
                                 ascending=[False, True])
    front = []
    best_tpot = math.inf
    for index, row in ordered.iterrows():
        if row.tpot_mean_s < best_tpot:
            front.append(index)
            best_tpot = row.tpot_mean_s
    return points.loc[front].sort_values("output_tokens_per_s_per_gpu")


def workload_name(row):
    return f"prompt {int(row.prompt_len)}, out {int(row.output_len)}"


def pareto_fronts(points):
    """[(workload, front)] with one Pareto front per (prompt, output) length."""
    named = points.assign(workload=points.apply(workload_name, axis=1))
    return [(workload, pareto_front(group))
            for workload, group in sorted(named.groupby("workload"),
                                          key=lambda item: item[0])]


def front_label(row):
    """A front point's label: its strategy and batch ("tp4 pp1 dp2 b64")."""
    return f"{strategy(row)} b{int(row.batch_size)}"


def plot_pareto(ok, path):
    title = "Time per output token against throughput per GPU"
    fit = ok[(ok["fits"] == True) & ok["tpot_mean_s"].notna()  # noqa: E712
             & (ok["output_len"] > 1)]
    if fit.empty:
        empty_plot(path, title, "no point that fits generates two tokens or more")
        return
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    for series, group in sorted(fit.groupby("series"), key=lambda item: item[0]):
        ax.scatter(group["output_tokens_per_s_per_gpu"],
                   group["tpot_mean_s"] * 1e3, s=18, alpha=0.7, label=series)
    # One front per workload: a point of a short prompt does not beat one of
    # a long prompt, they answer different questions.
    fronts = pareto_fronts(fit)
    styles = ["-", "--", ":", "-."]
    for i, (workload, front) in enumerate(fronts):
        ax.plot(front["output_tokens_per_s_per_gpu"],
                front["tpot_mean_s"] * 1e3, color="black", linewidth=1.2,
                linestyle=styles[i % len(styles)], drawstyle="steps-post",
                label=f"Pareto front, {workload}" if len(fronts) > 1
                else "Pareto front")
        ax.scatter(front["output_tokens_per_s_per_gpu"],
                   front["tpot_mean_s"] * 1e3, s=50, facecolors="none",
                   edgecolors="black")
        for _, row in front.iterrows():
            ax.annotate(front_label(row),
                        (row.output_tokens_per_s_per_gpu,
                         row.tpot_mean_s * 1e3),
                        textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("output tokens/s per GPU (higher is better)")
    ax.set_ylabel("time per output token, ms (lower is better)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(fig, path)


def point_ranges(points):
    """[1, 2, 3, 5, 7, 8] -> "1-3, 5, 7-8"."""
    parts = []
    for p in sorted(int(x) for x in points):
        if parts and parts[-1][1] == p - 1:
            parts[-1][1] = p
        else:
            parts.append([p, p])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def bar_label(row, swept):
    parts = [short(path, row[path]) for path in swept]
    return " ".join(parts) if parts else f"point {int(row.point)}"


def plot_memory(ok, swept, path):
    title = "Peak GPU memory by component, against capacity"
    if ok.empty:
        empty_plot(path, title, "no point ran")
        return
    chosen = ok.set_index("point").loc[spread(ok["point"].tolist(), MAX_BARS)]
    chosen = chosen.reset_index()
    labels = [bar_label(row, swept) for _, row in chosen.iterrows()]
    width = max(7.0, 0.42 * len(chosen) + 2)
    fig, ax = plt.subplots(figsize=(width, 5.5))
    x = range(len(chosen))
    bottom = [0.0] * len(chosen)
    for column, name in COMPONENTS:
        values = (chosen[column].fillna(0) / GIB).tolist()
        ax.bar(x, values, bottom=bottom, label=name, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values)]
    capacity = (chosen["capacity_bytes"] / GIB).tolist()
    for i, cap in enumerate(capacity):
        ax.hlines(cap, i - 0.45, i + 0.45, colors="red", linewidth=2,
                  label="capacity" if i == 0 else None)
    for i, (_, row) in enumerate(chosen.iterrows()):
        if row.fits is False:
            ax.text(i, bottom[i], "✗", ha="center", va="bottom", color="red")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("GiB on the GPU with the highest peak")
    shown = "" if len(chosen) == len(ok) else f" ({len(chosen)} of {len(ok)} points)"
    ax.set_title(title + shown)
    dropped = sorted(set(ok["point"]) - set(chosen["point"]))
    if dropped:
        fig.text(0.01, -0.02, "not shown (too many bars): points "
                 + point_ranges(dropped), fontsize=7, va="top", wrap=True)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(True, axis="y", alpha=0.3)
    save_figure(fig, path)


def comm_plot_reason(ok):
    """Why there is no communication plot, or None when there is one."""
    if ok.empty:
        return "no point ran"
    if (ok["num_gpus"] <= 1).all():
        return "every point runs on one GPU: nothing to communicate"
    return None


def plot_comm(ok, path):
    title = "Communication share of GPU time, by strategy and cluster"
    why = comm_plot_reason(ok)
    if why is not None:
        empty_plot(path, title, why)
        return
    ok = ok[ok["num_gpus"] > 1]
    ok = ok.copy()
    ok["network"] = (ok["cluster"].astype(str) + " ("
                     + ok["interconnect"].astype(str) + ")")
    table = ok.pivot_table(index="strategy", columns="network",
                           values="comm_overhead", aggfunc="mean") * 100
    table = table.sort_index()
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 * len(table) + 3), 4.8))
    table.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set_xlabel("strategy")
    ax.set_ylabel("communication, % of GPU time (mean over points)")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="cluster (links)", fontsize="small",
              loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(fig, path)


PLOTS = [
    ("throughput_vs_batch.png", "Throughput against batch size"),
    ("pareto.png", "Latency against throughput per GPU: the Pareto front"),
    ("memory.png", "Memory of the peak GPU"),
    ("comm_share.png", "Communication share"),
]
# Only when some point has a cost (its topology gives a GPU price).
COST_PLOT = ("cost.png", "Cost per million output tokens")


def plot_cost(ok, path):
    """Cost per million output tokens by strategy and cluster, for the points
    that fit and have a price. False (and no file) when none has."""
    priced = ok[(ok["fits"] == True)  # noqa: E712
                & ok["cost_per_million_output_tokens"].notna()]
    if priced.empty:
        return False
    priced = priced.assign(network=priced["cluster"].astype(str))
    # The cheapest point of each strategy on each cluster (over the batch
    # sizes and other fields swept): what the strategy can cost at best.
    table = priced.pivot_table(index="strategy", columns="network",
                               values="cost_per_million_output_tokens",
                               aggfunc="min").sort_index()
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 * len(table) + 3), 4.8))
    table.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set_xlabel("strategy")
    ax.set_ylabel("$ per million output tokens (cheapest point)")
    ax.set_title(COST_PLOT[1] + " (points that fit, with a GPU price)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="cluster", fontsize="small", loc="center left",
              bbox_to_anchor=(1.01, 0.5))
    save_figure(fig, path)
    return True

def write_page(df, ok, swept, source, title, path, plots=PLOTS):
    skipped = df[df["status"] != "ok"]
    results = ["model", "gpu", "interconnect", "tp", "pp", "dp", "batch_size",
               "prompt_len", "output_len", "fits", "peak_memory_bytes",
               "peak_memory_largest", "ttft_mean_s", "tpot_mean_s",
               "output_tokens_per_s", "output_tokens_per_s_per_gpu",
               "comm_overhead", "cost_per_million_output_tokens"]
    shown = ok[["point"] + swept + [c for c in results if c not in swept]].copy()
    shown["peak_memory_GiB"] = shown.pop("peak_memory_bytes") / GIB
    fits = int((ok["fits"] == True).sum())  # noqa: E712
    write_html_page(
        path, title,
        f"{len(df)} points from <code>{html.escape(source)}</code>: "
        f"{len(ok)} ran ({fits} fit in GPU memory), {len(skipped)} skipped.",
        plots, shown, df, swept)


def main(argv):
    args = parse_args(argv, "Plots and an HTML page from a shardsim sweep table.")
    # A serve sweep's table has other columns and other plots.
    import plot_serve  # noqa: E402 (here: it imports this module)
    try:
        if plot_serve.is_serve_table(args.table):
            return plot_serve.main(argv)
    except (OSError, UnicodeDecodeError):
        pass  # read_table says what is wrong with the file
    try:
        df = read_table(args.table)
    except (OSError, ValueError) as e:
        print(f"plot_sweep: {e}", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    swept = swept_columns(df)
    ok = df[df["status"] == "ok"]
    if not ok.empty:
        ok = add_labels(ok)
    else:
        ok = ok.assign(strategy=[], series=[])
    title = page_title(args)
    plot_throughput(ok, os.path.join(args.out, PLOTS[0][0]))
    plot_pareto(ok, os.path.join(args.out, PLOTS[1][0]))
    plot_memory(ok, swept, os.path.join(args.out, PLOTS[2][0]))
    plot_comm(ok, os.path.join(args.out, PLOTS[3][0]))
    plots = list(PLOTS)
    if not ok.empty and plot_cost(ok, os.path.join(args.out, COST_PLOT[0])):
        plots.append(COST_PLOT)
    write_page(df, ok, swept, args.table, title,
               os.path.join(args.out, "index.html"), plots)
    print(f"wrote {len(plots)} plots and index.html to {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
