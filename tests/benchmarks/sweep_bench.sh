#!/usr/bin/env bash
# Wall time of `shardsim sweep` for the issue's benchmark: 1,000 static-batch
# points of Llama-3-70B on one DGX H100, 256 output tokens each (4 tp degrees
# x 25 batch sizes x 10 prompt lengths: tests/benchmarks/sweep_bench.textproto)
# with --jobs 2. Also checks that the table has 1,000 rows. Usage, from the
# repo root after building:
#   bash tests/benchmarks/sweep_bench.sh [jobs]
set -euo pipefail
bin=${SHARDSIM:-build/sim/cli/shardsim}
jobs=${1:-2}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

start=$(date +%s%N)
"$bin" sweep tests/benchmarks/sweep_bench.textproto --out="$dir/bench.csv" \
  --jobs="$jobs" 2> "$dir/log"
end=$(date +%s%N)
rows=$(($(wc -l < "$dir/bench.csv") - 1))
ok=$(grep -c ',ok,' "$dir/bench.csv" || true)
if [ "$rows" -ne 1000 ]; then
  echo "sweep_bench: expected 1000 rows, got $rows" >&2
  cat "$dir/log" >&2
  exit 1
fi
awk -v ns=$((end - start)) -v jobs="$jobs" -v ok="$ok" 'BEGIN{
  s = ns / 1e9
  printf "1000 points (%d ok, %d skipped) with --jobs %d: %.1f s, %.1f ms per point\n",
         ok, 1000 - ok, jobs, s, s * 1000 / 1000
}'
