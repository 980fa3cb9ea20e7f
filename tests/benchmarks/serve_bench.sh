#!/usr/bin/env bash
# `shardsim serve` speed: the 10,000 requests of Vidur's conversation trace on
# Llama-2-70B, tp=4, one DGX A100 (chunk 512, 128 sequences), and 100,000
# synthetic Poisson requests on Llama-3-70B, tp=8, DGX H100. Whole process,
# pinned to one core: wall time and peak RSS. Usage, from the repo root:
#   bash tests/benchmarks/serve_bench.sh [runs per point]
set -euo pipefail
bin=${SHARDSIM:-build/sim/cli/shardsim}
runs=${1:-3}

row() {  # label, then shardsim arguments
  local label=$1; shift
  for _ in $(seq "$runs"); do
    local start end rss
    start=$(date +%s%N)
    rss=$( { /usr/bin/time -f "%M" taskset -c 0 "$bin" "$@" --format=json > /dev/null; } 2>&1 )
    end=$(date +%s%N)
    printf '%-52s %8.0f ms  %6.0f MB peak\n' "$label" \
      "$(awk -v ns=$((end - start)) 'BEGIN{print ns / 1e6}')" "$(awk -v kb="$rss" 'BEGIN{print kb / 1024}')"
  done
}

row "Vidur trace: 10,000 requests, Llama-2-70B tp=4 A100" \
  serve scenarios/serve_vidur_llama2_70b_a100_tp4.textproto
row "100,000 Poisson requests at 3/s, Llama-3-70B tp=8" \
  serve scenarios/serve_llama3_70b_h100_tp8.textproto \
  --set serving.num_requests=100000 --set serving.arrival.rate_per_s=3
