#!/bin/bash
# `shardsim plan` on 14,400 candidates (tests/benchmarks/plan_bench.textproto):
# the estimate alone (--estimate-only: candidates per second), then the whole
# plan with its top 50 simulated as serving runs, --jobs 2, from a fresh
# result folder each time.
#   bash tests/benchmarks/plan_bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-1}
bin=build/sim/cli/shardsim
plan=tests/benchmarks/plan_bench.textproto
for i in $(seq "$runs"); do
  "$bin" plan "$plan" --estimate-only
done
for i in $(seq "$runs"); do
  out=$(mktemp -d "${TMPDIR:-/tmp}/plan_bench_$$_XXXXXX")
  start=$(date +%s.%N)
  "$bin" plan "$plan" --jobs=2 --out="$out" > /dev/null
  end=$(date +%s.%N)
  echo "whole plan: $(echo "$end - $start" | bc) s"
  rm -rf "$out"
done
