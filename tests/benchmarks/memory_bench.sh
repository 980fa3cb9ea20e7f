#!/usr/bin/env bash
# Wall time of `shardsim memory` for every model in the zoo (whole process:
# start, load and check the files, compute, print). Usage, from the repo root
# after building:  bash tests/benchmarks/memory_bench.sh [runs per model]
set -euo pipefail
bin=${SHARDSIM:-build/sim/cli/shardsim}
runs=${1:-20}
worst=0
printf '%-28s %10s\n' model "ms/run"
for model in models/*; do
  args=(memory scenarios/default.textproto --set "model_file=../$model"
        --set parallelism.tp=1 --set workload.output_len=0 --set workload.prompt_len=512)
  "$bin" "${args[@]}" > /dev/null  # warm the page cache
  start=$(date +%s%N)
  for _ in $(seq "$runs"); do "$bin" "${args[@]}" > /dev/null; done
  end=$(date +%s%N)
  us=$(( (end - start) / runs / 1000 ))
  (( us > worst )) && worst=$us
  printf '%-28s %10s\n' "$(basename "$model")" "$(awk -v u="$us" 'BEGIN{printf "%.2f", u/1000}')"
done
printf 'slowest: %s ms per run\n' "$(awk -v u="$worst" 'BEGIN{printf "%.2f", u/1000}')"
