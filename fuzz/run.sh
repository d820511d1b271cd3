#!/usr/bin/env bash
# Seeds the corpora, then runs every fuzz target in turn, one fuzzer process at
# a time (-jobs=1 -workers=1), for SECONDS each (default 60).
#
#   ./fuzz/run.sh [seconds-per-target] [target...]
#
# Needs a nightly toolchain and cargo-fuzz (cargo install --locked cargo-fuzz).
# Builds into fuzz/target; crashes land in fuzz/artifacts/<target>/.
# Set FUZZ_RUNS=N to stop each target after N executions too (whichever comes first).
# Each run's log goes to fuzz/logs/<target>.log; the script fails if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(notification_body jwt_header_claims transfer_machine call_machine)
fi

# The fuzz crate has its own workspace and target directory.
unset CARGO_TARGET_DIR

./fuzz/seed.sh
cargo +nightly fuzz build
mkdir -p fuzz/logs
status=0
for target in "${targets[@]}"; do
  limit=(-max_total_time="$seconds")
  if [[ -n "${FUZZ_RUNS:-}" ]]; then
    limit+=(-runs="$FUZZ_RUNS")
  fi
  echo "== $target (${limit[*]})"
  # The corpus is fuzz/corpus/<target>; -jobs=1 sends the fuzzer's output to fuzz-0.log.
  if ! cargo +nightly fuzz run "$target" -- "${limit[@]}" -jobs=1 -workers=1 -print_final_stats=1; then
    status=1
  fi
  mv -f fuzz-0.log "fuzz/logs/$target.log"
  grep -E '^(Done|stat::|SUMMARY|artifact_prefix)' "fuzz/logs/$target.log" || true
done
exit "$status"
