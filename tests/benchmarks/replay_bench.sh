#!/usr/bin/env bash
# Wall time of `shardsim run` (whole process, one core) for the issue's
# reference replay -- Llama-3-70B, tp=8 on a DGX H100, batch 64, prompt 1024,
# output 1024 (the default scenario) -- and how it grows with output length,
# tp and the number of nodes. Usage, from the repo root after building:
#   bash tests/benchmarks/replay_bench.sh [runs per point]
set -euo pipefail
bin=${SHARDSIM:-build/sim/cli/shardsim}
runs=${1:-5}

# Mean milliseconds per run of `shardsim run scenarios/default.textproto ARGS`,
# pinned to one core.
time_ms() {
  taskset -c 0 "$bin" run scenarios/default.textproto "$@" --format=csv > /dev/null
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$runs"); do
    taskset -c 0 "$bin" run scenarios/default.textproto "$@" --format=csv > /dev/null
  done
  end=$(date +%s%N)
  awk -v ns=$((end - start)) -v n="$runs" 'BEGIN{printf "%.1f", ns / n / 1e6}'
}

row() {  # label, then shardsim arguments
  local label=$1; shift
  printf '%-44s %8s ms\n' "$label" "$(time_ms "$@")"
}

echo "reference (default scenario: 1 prefill + 1023 decode steps)"
row "tp=8 batch 64 prompt 1024 output 1024"
echo
echo "output length (tp=8)"
for out in 256 1024 4096 16384; do
  row "output $out" --set workload.output_len=$out
done
echo
echo "tensor parallelism (output 1024)"
for tp in 1 2 4 8; do
  row "tp=$tp" --set parallelism.tp=$tp
done
echo
echo "nodes (output 1024; tp=8 inside each node, one pipeline stage per node)"
row "1 node, tp=8" 
row "2 nodes, tp=8 pp=2" --set topology_file=../topologies/h100_2node_ib.textproto --set parallelism.pp=2
row "4 nodes, tp=8 pp=4" --set topology_file=../topologies/h100_4node_ib.textproto --set parallelism.pp=4
row "2 nodes, tp=16" --set topology_file=../topologies/h100_2node_ib.textproto --set parallelism.tp=16
row "4 nodes, tp=32" --set topology_file=../topologies/h100_4node_ib.textproto --set parallelism.tp=32
row "4 nodes, tp=8 dp=4" --set topology_file=../topologies/h100_4node_ib.textproto --set parallelism.dp=4
echo
echo "mixture of experts (issue 10's target: under 0.5 s)"
row "DeepSeek-V3, 8 H200, ep=8 dp=8, 256 x (1024+1024)" \
  --set model_file=../models/deepseek_v3.json --set topology_file=../topologies/hgx_h200.textproto \
  --set parallelism.tp=1 --set parallelism.dp=8 --set parallelism.ep=8 \
  --set workload.batch_size=256 --set workload.prompt_len=1024 --set workload.output_len=1024

echo
echo "datacenter scale: 1,024 DGX H100 nodes (8,192 GPUs) on a two-level fat tree"
big=../topologies/h100_1024node_fattree.textproto
# One whole process pinned to one core: wall milliseconds and peak RSS.
time_and_memory() {  # label, then shardsim arguments
  local label=$1; shift
  local start end rss
  start=$(date +%s%N)
  rss=$( { /usr/bin/time -f "%M" taskset -c 0 "$bin" "$@" > /dev/null; } 2>&1 )
  end=$(date +%s%N)
  printf '%-44s %8.0f ms  %6.0f MB peak\n' "$label" \
    "$(awk -v ns=$((end - start)) 'BEGIN{print ns / 1e6}')" "$(awk -v kb="$rss" 'BEGIN{print kb / 1024}')"
}
time_and_memory "load and memory ledger, tp=8 dp=1024" memory scenarios/default.textproto \
  --set topology_file=$big --set parallelism.dp=1024 --set workload.batch_size=65536
for batch in 64 65536; do
  time_and_memory "run, tp=8 dp=1024, batch $batch" run scenarios/default.textproto \
    --set topology_file=$big --set parallelism.dp=1024 --set workload.batch_size=$batch --format=csv
done
