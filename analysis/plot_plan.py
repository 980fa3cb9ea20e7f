#!/usr/bin/env python3
"""Draws the Pareto fronts of a `shardsim plan` run, the chosen point marked.

    python3 analysis/plot_plan.py OUT/candidates.csv --out=pareto.png

candidates.csv is what `shardsim plan --out=OUT` writes (every candidate).
Three panels over the simulated candidates: output tokens/s per GPU against
TPOT, and against TTFT (higher and to the left is better), and cost per
million output tokens against TPOT (lower and to the left is better, when
GPUs have a price). Candidates that meet the SLO are filled, those that miss
it hollow; each front is a line with its points labelled by deployment, and
the chosen candidate is a star. Needs pandas and matplotlib (Debian:
python3-pandas python3-matplotlib).
"""

import argparse
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

# (x column, y column, front flag column, x label, y label)
PANELS = [
    ("tpot_s", "output_tokens_per_s_per_gpu", "pareto_tpot", "TPOT (s)",
     "output tokens/s per GPU"),
    ("ttft_s", "output_tokens_per_s_per_gpu", "pareto_ttft", "TTFT (s)",
     "output tokens/s per GPU"),
    ("tpot_s", "cost_per_million_tokens", "pareto_cost", "TPOT (s)",
     "$ per million output tokens"),
]


def load(path):
    """The simulated candidates of a candidates.csv, booleans as booleans."""
    df = pd.read_csv(path)
    for column in ["simulated", "meets_slo", "pareto_tpot", "pareto_ttft",
                   "pareto_cost", "chosen", "fits"]:
        df[column] = df[column].astype(str).str.lower() == "true"
    return df[df["simulated"]].copy()


def label(row):
    """'H100-SXM5-80GB x2 tp2 dp1' (with the recipe and ep when set)."""
    text = f"{row['gpu']} x{int(row['num_gpus'])} tp{int(row['tp'])} " \
           f"pp{int(row['pp'])} dp{int(row['dp'])}"
    if int(row.get("ep", 1) or 1) > 1:
        text += f" ep{int(row['ep'])}"
    recipe = row.get("recipe")
    if isinstance(recipe, str) and recipe:
        text += f" {recipe}"
    return text


def front(df, flag, x):
    """The front's points in order of x, for a line through them."""
    return df[df[flag]].sort_values(x)


def panels(df):
    """The panels that have something to draw: cost only when priced."""
    out = []
    for panel in PANELS:
        x, y = panel[0], panel[1]
        usable = df[(df[x] > 0) & (df[y] > 0)]
        if not usable.empty:
            out.append((panel, usable))
    return out


def plot(df, out):
    drawn = panels(df)
    if not drawn:
        raise SystemExit("plot_plan: no simulated candidate to draw")
    fig, axes = plt.subplots(1, len(drawn), figsize=(6 * len(drawn), 4.8),
                             squeeze=False)
    for ax, ((x, y, flag, xlabel, ylabel), data) in zip(axes[0], drawn):
        met = data[data["meets_slo"]]
        missed = data[~data["meets_slo"]]
        ax.scatter(met[x], met[y], color="tab:blue", label="meets the SLO")
        ax.scatter(missed[x], missed[y], facecolors="none",
                   edgecolors="tab:gray", label="misses the SLO")
        line = front(data, flag, x)
        if not line.empty:
            ax.plot(line[x], line[y], color="tab:blue", alpha=0.5,
                    label="Pareto front")
            for _, row in line.iterrows():
                ax.annotate(label(row), (row[x], row[y]), fontsize=7,
                            xytext=(4, 4), textcoords="offset points")
        chosen = data[data["chosen"]]
        if not chosen.empty:
            ax.scatter(chosen[x], chosen[y], marker="*", s=250,
                       color="tab:red", zorder=5, label="chosen")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates")
    parser.add_argument("--out", default="pareto.png")
    args = parser.parse_args(argv)
    plot(load(args.candidates), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
