#!/usr/bin/env bash
# Fuzzes every target in tests/fuzz for SECONDS each (default 10), starting
# from its seed corpus. New inputs and any crash go to a temporary folder,
# never into the repository; a crash, a timeout or a sanitizer report makes
# the script fail and prints the input's path, kept for a test case.
#
#   bash tests/fuzz/run.sh build-asan 10     (CI: about 30 s in all)
#   bash tests/fuzz/run.sh build-asan 3600   (an hour each, on a spare machine)
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [SECONDS_EACH]}
seconds=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
status=0
for fuzzer in config_fuzzer set_fuzzer results_fuzzer; do
  mkdir -p "$work/$fuzzer"
  # -timeout: an input slower than 10 s is a hang; -rss_limit_mb: one that
  # grows past 2 GB is a memory bomb. The new corpus comes first, so found
  # inputs are written there and the seeds stay as they are.
  if ! "$build/tests/fuzz/$fuzzer" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/$fuzzer/" \
      "$work/$fuzzer" "$here/corpus/$fuzzer" >"$work/$fuzzer.log" 2>&1; then
    echo "fuzz: $fuzzer failed; input and log kept in $work/$fuzzer*" >&2
    tail -n 40 "$work/$fuzzer.log" >&2
    status=1
  else
    echo "fuzz: $fuzzer: $(grep -o 'stat::number_of_executed_units: [0-9]*' \
      "$work/$fuzzer.log" | grep -o '[0-9]*$') inputs in ${seconds} s, nothing found"
  fi
done
[ "$status" -eq 0 ] && rm -rf "$work"
exit "$status"
