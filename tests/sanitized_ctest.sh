#!/usr/bin/env bash
# Runs the test suite of a sanitizer build (-DSHARDSIM_SANITIZE=ON) and
# fails on any AddressSanitizer, LeakSanitizer or UBSan report.
#
#   bash tests/sanitized_ctest.sh build-asan   (from the repository)
#
# Why the sanitizers write to files here: SimGrid runs its actors on stacks
# of its own, and Debian's libsimgrid has no ASan fiber annotations, so the
# first exception thrown on an actor's stack makes ASan print a WARNING
# ("ignoring requested __asan_handle_no_return") on stderr, where the CLI
# tests read a report or a one-line error. With log_path every sanitizer
# message goes to a file instead. Nothing is silenced: a real report still
# ends the process at once (-fno-sanitize-recover=all) with exit code 99,
# which no test expects, and this script prints every report found in the
# files and fails. The warning alone is not a report.
set -euo pipefail
build=${1:?usage: sanitized_ctest.sh BUILD_DIR}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export ASAN_OPTIONS="log_path=$logs/asan:exitcode=99:detect_leaks=1"
export UBSAN_OPTIONS="log_path=$logs/ubsan:exitcode=99:print_stacktrace=1"
status=0
ctest --test-dir "$build" --output-on-failure -j2 || status=1
reports=$(grep -l -E "ERROR: |runtime error|SUMMARY: " "$logs"/* 2>/dev/null || true)
if [ -n "$reports" ]; then
  for report in $reports; do
    echo "=== $report" >&2
    cat "$report" >&2
  done
  status=1
fi
echo "sanitized_ctest: $(find "$logs" -type f | wc -l) sanitizer log files," \
     "$(printf '%s' "$reports" | grep -c .) with a report"
exit "$status"
