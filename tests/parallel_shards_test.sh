#!/usr/bin/env bash
# A sweep's shards run by GNU parallel (as README's multi-machine recipe
# runs them, here on one machine), then merged: the bytes of a one-machine
# run. Each shard is one process, as on its own machine.
#
#   bash tests/parallel_shards_test.sh build/sim/cli/shardsim   (from the repository)
set -euo pipefail
shardsim=$1
command -v parallel >/dev/null ||
  { echo "parallel_shards_test: no GNU parallel; apt-get install parallel" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

cat > "$dir/sweep.textproto" <<SWEEP
name: "parallel_shards"
base_scenario: "$PWD/scenarios/default.textproto"
set: "workload.output_len=4"
set: "workload.prompt_len=128"
axes { path: "parallelism.tp" values: ["2", "3", "4", "8"] }
axes { path: "workload.batch_size" values: ["1", "16"] }
SWEEP

"$shardsim" sweep "$dir/sweep.textproto" --out="$dir/one.csv" --jobs=2
# --halt now,fail=1: a failing shard fails the whole run; --jobs 3: all
# shards at once, finishing in whatever order.
parallel --will-cite --halt now,fail=1 --jobs 3 \
  "$shardsim" sweep "$dir/sweep.textproto" --shard={}/3 --jobs=1 \
  --out="$dir/shard_{}.csv" ::: 1 2 3
"$shardsim" merge --out="$dir/all.csv" "$dir"/shard_*.csv
cmp "$dir/one.csv" "$dir/all.csv" ||
  { echo "parallel_shards_test: the merged shards differ from one run" >&2; exit 1; }
[ "$(wc -l < "$dir/all.csv")" -eq 9 ] ||
  { echo "parallel_shards_test: expected a header and 8 rows" >&2; exit 1; }
echo "parallel_shards_test: ok"
