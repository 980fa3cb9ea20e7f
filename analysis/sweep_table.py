"""What plot_sweep.py and plot_serve.py share: reading a `shardsim sweep`
table (CSV or JSON Lines), its swept columns, short labels, saving a
figure, and the HTML page (a sortable table of results, the skipped points
with their reasons, the plots with their captions).

Not run by itself; needs pandas and matplotlib (Debian: apt-get install
python3-pandas python3-matplotlib).
"""

import argparse
import html
import json
import math
import os

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

LEADING = ["point", "key", "status", "reason"]
# The first result column: everything between the leading columns and it is
# a swept field path.
FIRST_RESULT = "model"


def not_a_table(path, error):
    return ValueError(f"{path}: not a sweep table ({str(error).strip()})")


def load_table(path, kind, required):
    """The table at `path` as a DataFrame of the file's own values, from CSV
    or JSON Lines (by its first byte); a ValueError naming the file when it
    is neither, or lacks a column of LEADING, FIRST_RESULT or `required`
    ("not a shardsim KIND table")."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("{"):
        try:
            rows = [json.loads(line) for line in text.splitlines()
                    if line.strip()]
        except json.JSONDecodeError as e:
            raise not_a_table(path, e) from e
        df = pd.DataFrame(rows, columns=list(rows[0].keys()) if rows else [])
    else:
        try:
            with open(path, encoding="utf-8") as f:
                df = pd.read_csv(f, keep_default_na=False, na_values=[""],
                                 dtype={"key": str, "reason": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise not_a_table(path, e) from e
    missing = [c for c in LEADING + [FIRST_RESULT] + list(required)
               if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a shardsim {kind} table "
                         f"(no column {', '.join(missing)})")
    return df


def swept_columns(df):
    columns = list(df.columns)
    return columns[len(LEADING):columns.index(FIRST_RESULT)]


def short(path, value):
    """A compact label part: "tp=8", "topology=dgx_h100"."""
    name = path.split(".")[-1]
    text = str(value)
    if name.endswith("_file"):
        name = name[: -len("_file")]
        text = os.path.splitext(os.path.basename(text))[0]
    return f"{name}={text}"


def save_figure(fig, path):
    """Writes the figure (100 dpi, trimmed to what is drawn) and closes it."""
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def empty_plot(path, title, why):
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv, description):
    """The plotters' command line: TABLE --out=DIR [--title=TEXT]."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("table", help="CSV or JSON Lines from shardsim sweep")
    parser.add_argument("--out", required=True, help="folder for the output")
    parser.add_argument("--title", help="page title (default: the table's name)")
    return parser.parse_args(argv)


def page_title(args):
    return args.title or os.path.splitext(os.path.basename(args.table))[0]


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
img { max-width: 100%; border: 1px solid #ddd; margin-bottom: 1.5em; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.text { text-align: left; }
.scroll { max-height: 40em; overflow: auto; }
th { cursor: pointer; }
"""

# Click a column header to sort by it (again: the other way). Numbers sort
# as numbers, empty cells last.
SORT_SCRIPT = """
<script>
function sortTable(th) {
  const table = th.closest("table"), body = table.tBodies[0];
  const col = Array.from(th.parentNode.children).indexOf(th);
  const dir = th.dataset.dir === "asc" ? -1 : 1;
  th.dataset.dir = dir === 1 ? "asc" : "desc";
  const key = td => td.textContent.trim();
  Array.from(body.rows).sort((a, b) => {
    const x = key(a.cells[col]), y = key(b.cells[col]);
    if (x === "" || y === "") return (x === "") - (y === "");
    const nx = Number(x), ny = Number(y);
    const c = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
    return dir * c;
  }).forEach(row => body.appendChild(row));
}
</script>
"""


def html_table(df):
    header = "".join(f'<th onclick="sortTable(this)">{html.escape(str(c))}</th>'
                     for c in df.columns)
    body = []
    for _, row in df.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float) and math.isnan(value):
                cells.append("<td></td>")
            elif isinstance(value, float):
                cells.append(f"<td>{value:.4g}</td>")
            elif isinstance(value, str):
                cells.append(f'<td class="text">{html.escape(value)}</td>')
            else:
                cells.append(f"<td>{html.escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{header}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def write_page(path, title, summary, plots, shown, df, swept):
    """index.html: the title, `summary` (HTML: how many points ran, from
    where) and what was swept, each (file, caption) of `plots`, the `shown`
    results and the skipped points of `df` with their swept values and
    reasons."""
    skipped = df[df["status"] != "ok"]
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"{SORT_SCRIPT}</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{summary} "
        f"Swept: {html.escape(', '.join(swept) or 'nothing')}.</p>",
    ]
    for name, caption in plots:
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        parts.append(f'<img src="{name}" alt="{html.escape(caption)}">')
    parts.append("<h2>Results</h2>")
    parts.append(html_table(shown))
    if not skipped.empty:
        parts.append("<h2>Skipped points</h2>")
        parts.append(html_table(skipped[["point"] + swept + ["reason"]]))
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
