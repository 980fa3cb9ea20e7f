#!/usr/bin/env bash
# analysis/plot_sweep.py turns a small sweep (two priced clusters, three strategies,
# three batch sizes, and an invalid point) into its five plots and its page,
# from CSV and from JSON Lines; and a small serve sweep into its latency and
# goodput plots (plot_sweep.py hands it to plot_serve.py).
#
#   bash tests/analysis_test.sh build/sim/cli/shardsim   (from the repository)
set -euo pipefail
shardsim=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# pandas and matplotlib come from Debian's python3 (README's apt-get line); a
# python3 earlier on PATH (pyenv, a venv) may lack them.
python=""
for candidate in /usr/bin/python3 python3; do
  if command -v "$candidate" >/dev/null &&
     "$candidate" -c 'import pandas, matplotlib' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "analysis_test: no python3 with pandas and matplotlib;" \
       "apt-get install python3-pandas python3-matplotlib" >&2
  exit 1
fi

# expect_plots OUT PLOT...: each OUT/PLOT.png is a real PNG (it starts with
# \x89PNG, and a plot is more than a few hundred bytes) that OUT/index.html
# shows.
expect_plots() {
  local out=$1 plot file
  shift
  for plot in "$@"; do
    file="$out/$plot.png"
    if [ "$(head -c 4 "$file" | tail -c 3)" != "PNG" ] ||
       [ "$(stat -c %s "$file")" -lt 5000 ]; then
      echo "analysis_test: $file is not a plot" >&2
      exit 1
    fi
    grep -q "<img src=\"$plot.png\"" "$out/index.html" ||
      { echo "analysis_test: index.html does not show $plot.png" >&2; exit 1; }
  done
}

cat > "$dir/sweep.textproto" <<SWEEP
name: "analysis_test"
base_scenario: "$PWD/scenarios/default.textproto"
set: "workload.output_len=4"
set: "workload.prompt_len=256"
axes {
  path: "topology_file"
  values: ["../topologies/dgx_h100.textproto", "../topologies/pcie_l40s_8x.textproto"]
}
zipped {
  axes { path: "parallelism.tp" values: ["8", "4", "2", "3"] }
  axes { path: "parallelism.pp" values: ["1", "2", "4", "1"] }
}
axes { path: "workload.batch_size" values: ["1", "16", "64"] }
SWEEP

"$shardsim" sweep "$dir/sweep.textproto" --out="$dir/r.csv" --jobs=2
"$shardsim" sweep "$dir/sweep.textproto" --out="$dir/r.jsonl" --jobs=2
grep -q ',skipped,.*tp=3 does not divide' "$dir/r.csv" ||
  { echo "analysis_test: no skipped tp=3 row in r.csv" >&2; exit 1; }

for table in r.csv r.jsonl; do
  out="$dir/plots_${table%.*}_${table#*.}"
  "$python" analysis/plot_sweep.py "$dir/$table" --out="$out"
  # Both clusters give a GPU price, so there is a cost plot too.
  expect_plots "$out" throughput_vs_batch pareto memory comm_share cost
  grep -q '<table>' "$out/index.html" &&
    grep -q 'Skipped points' "$out/index.html" &&
    grep -q 'tp=3 does not divide' "$out/index.html" ||
    { echo "analysis_test: $out/index.html lacks the tables" >&2; exit 1; }
done
# A serve sweep (two plans at two rates): plot_sweep.py hands its table to
# plot_serve.py, which draws latency and goodput against the rate.
cat > "$dir/serve.textproto" <<SWEEP
name: "analysis_serve_test"
command: SERVE
base_scenario: "$PWD/scenarios/serve_llama3_70b_h100_tp8.textproto"
set: "serving.num_requests=8"
zipped {
  axes { path: "parallelism.tp" values: ["8", "4"] }
  axes { path: "parallelism.dp" values: ["1", "2"] }
}
axes { path: "serving.arrival.rate_per_s" values: ["1", "40"] }
SWEEP
"$shardsim" sweep "$dir/serve.textproto" --out="$dir/s.csv" --jobs=2
"$shardsim" sweep "$dir/serve.textproto" --out="$dir/s.jsonl" --jobs=2
for table in s.csv s.jsonl; do
  out="$dir/plots_${table%.*}_${table#*.}"
  "$python" analysis/plot_sweep.py "$dir/$table" --out="$out"
  expect_plots "$out" latency_vs_rate goodput_vs_rate
done
echo "analysis_test: ok"
