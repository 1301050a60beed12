#!/usr/bin/env bash
# `make bench`: every benchmark in one run, then a summary of their `goal`
# lines (see bench/lib.sh: any script that prints lines starting with
# "goal " is summarised, e.g. bench/cache_push.sh's R2). The full output is
# kept in $BENCH_LOG (default: a temporary file, named at the end).
# Asserts nothing; exits non-zero only when a benchmark itself failed.
set -uo pipefail
bench=$(cd "$(dirname "$0")" && pwd)
log=${BENCH_LOG:-$(mktemp --suffix=.bench.log)}
: >"$log"
failed=()
for script in host_read.sh cache_push.sh schema_optional.sh builder.sh breakdown.sh load.sh; do
  echo "== bench/$script" | tee -a "$log"
  bash "$bench/$script" 2>&1 | tee -a "$log" || failed+=("$script")
done
echo
echo "== goals (each ratio measured side by side in this run)"
grep '^goal ' "$log" | sed 's/^goal //' || echo "(no goal lines)"
echo "full output: $log"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
