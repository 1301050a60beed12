#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ one after another (`make fuzz`), each for
# FUZZ_SECONDS (default 600) with one libFuzzer worker (-jobs=1 -workers=1),
# then prints per target: runs, executions per second, coverage (cov/ft of
# libFuzzer's last status line) and crashes. Targets: the arguments, else
# every target `cargo fuzz list` names. Needs a nightly toolchain and
# cargo-fuzz (`cargo +nightly install cargo-fuzz`). Corpora grow in
# fuzz/corpus/<target>/, logs and crash inputs go to fuzz/artifacts/<target>/.
# See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${FUZZ_SECONDS:-600}
toolchain=${FUZZ_TOOLCHAIN:-+nightly}
# Safe Rust: no sanitizer (twice the executions), but debug assertions on, so
# integer overflows panic as they do in `cargo test`.
flags=(--fuzz-dir "$root/fuzz" --sanitizer none --debug-assertions)

if (($# > 0)); then
  targets=("$@")
else
  mapfile -t targets < <(cargo "$toolchain" fuzz list --fuzz-dir "$root/fuzz")
fi

# Build every target first, so the time limits are fuzzing time only.
cargo "$toolchain" fuzz build "${flags[@]}"

# Inputs libFuzzer saved as failing (crash, out of memory, timeout).
failures() {
  find "$1" -maxdepth 1 \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l
}

summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
printf '%-14s %8s %12s %10s %8s %8s %8s\n' target seconds runs exec/s cov ft crashes >"$summary"
failed=0
for target in "${targets[@]}"; do
  corpus=$root/fuzz/corpus/$target
  artifacts=$root/fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  before=$(failures "$artifacts")
  echo "== $target: ${seconds}s $(date -u +%FT%TZ)"
  # libFuzzer's job mode writes the worker's output to fuzz-0.log in the
  # working directory: run in the artifacts directory and keep that log.
  (
    cd "$artifacts"
    rm -f fuzz-0.log
    cargo "$toolchain" fuzz run "${flags[@]}" "$target" "$corpus" -- \
      -max_total_time="$seconds" -jobs=1 -workers=1 -print_final_stats=1 \
      -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts/" >run.log 2>&1 || true
  )
  log=$artifacts/fuzz-0.log
  [[ -f $log ]] || log=$artifacts/run.log
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  status=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  after=$(failures "$artifacts")
  crashes=$((after - before))
  if ((crashes > 0)); then
    failed=1
    echo "   $crashes new crash input(s) in fuzz/artifacts/$target/ (log: $log)"
  fi
  printf '%-14s %8s %12s %10s %8s %8s %8s\n' "$target" "$seconds" "${runs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "$crashes" | tee -a "$summary"
done
echo
cat "$summary"
exit "$failed"
