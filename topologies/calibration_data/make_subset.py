#!/usr/bin/env python3
"""Copies the cited subset of ../shared/calibration that shardsim fits and
judges on into topologies/calibration_data/, keeping every source column.

Run from the repository root:
  python3 topologies/calibration_data/make_subset.py ../shared/calibration

What is cut, and why the fits do not need it (README.md beside this script):
- Vidur mlp.csv (op times, A100): every 4th token count of each model's
  grid (1, 8, 32, 64, 96, ... ; the grid is every 8 tokens to 4096, every 256
  to 32768 for Llama-3), all columns, all tp. A uniform thinning keeps the
  weight the fit gives each regime; the medians move by tenths of a percent
  (README.md beside this script gives both).
- Vidur network CSVs: only single-node rows (num_workers == devices_per_node)
  of at most 64 MiB, the rows `shardsim calibrate` fits; every such row kept.
- AIConfigurator custom all-reduce (vLLM's kernels): the rows replayed in a
  CUDA graph (backend vllm_graph), as decode steps run them; the eager rows
  are left out.
- Everything else is copied whole.
"""
import csv
import os
import shutil
import sys


def every_4th_token_count(src):
    with open(src, newline="") as f:
        tokens = sorted({int(float(r["num_tokens"])) for r in csv.DictReader(f)})
    kept = set(tokens[::4])
    return lambda r: int(float(r["num_tokens"])) in kept


def filter_csv(src, dst, keep):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(src, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    kept = [r for r in body if keep(dict(zip(header, r)))]
    with open(dst, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header] + kept)
    print(f"{dst}: {len(kept)} of {len(body)} rows")


def copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    print(f"{dst}: copied")


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else "../shared/calibration"
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)))
    for name in ["README.md", "gpu_specs.csv", "gpu_measured_matmul_tflops.csv",
                 "trtllm_v0.9_a100_fp16.csv", "memory_reference.csv",
                 "vidur/LICENSE", "vidur/docs_profiling.md",
                 "public/README.md", "public/vllm_memory_profiling_h100.csv",
                 "public/aiconfigurator/aic_gemm.csv",
                 "public/aiconfigurator/aic_context_attention.csv",
                 "public/aiconfigurator/aic_generation_attention.csv",
                 "public/aiconfigurator/aic_nccl.csv",
                 "public/framework_overheads.csv"]:
        copy(os.path.join(shared, name), os.path.join(out, "source", name)
             if name.endswith("README.md") else os.path.join(out, name))
    compute = "vidur/data/profiling/compute/a100"
    for org in sorted(os.listdir(os.path.join(shared, compute))):
        for model in sorted(os.listdir(os.path.join(shared, compute, org))):
            rel = os.path.join(compute, org, model, "mlp.csv")
            filter_csv(os.path.join(shared, rel), os.path.join(out, rel),
                       every_4th_token_count(os.path.join(shared, rel)))
    custom = "public/aiconfigurator/aic_custom_allreduce.csv"
    filter_csv(os.path.join(shared, custom), os.path.join(out, custom),
               lambda r: r["backend"] == "vllm_graph")
    network = "vidur/data/profiling/network"
    for platform in sorted(os.listdir(os.path.join(shared, network))):
        for name in ["all_reduce.csv", "send_recv.csv"]:
            rel = os.path.join(network, platform, name)
            filter_csv(os.path.join(shared, rel), os.path.join(out, rel),
                       lambda r: r["num_workers"] == r["devices_per_node"]
                       and float(r["size"]) <= 64 * 2**20)


if __name__ == "__main__":
    main()
