#!/usr/bin/env bash
# Rewrites every golden run in MANIFEST from the built binary. Only on purpose:
# say in the commit why the outputs changed. Run from the repository root.
set -euo pipefail
bin=${SHARDSIM:-build/sim/cli/shardsim}
dir=tests/golden/run_json
grep -v '^#' "$dir/MANIFEST" | while read -r file args; do
  # shellcheck disable=SC2086
  "$bin" run $args --format=json > "$dir/$file"
done
