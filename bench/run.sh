#!/usr/bin/env bash
# Runs the whole benchmark suite: builds in release, installs wrk (and perf, for the
# profiles) if missing, then runs `bench suite`, which writes bench/report.md and
# prints it. About 6 minutes on a 2-core machine (plus the first release build).
# Extra arguments go to `bench suite` (see `bench suite --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  # Installing needs root and apt; without them the suite reports what it could not run.
  command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] || return 1
  apt-get install -y "$@" >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y "$@" >/dev/null 2>&1; }
}

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk" >&2
  apt_install wrk || { echo "wrk is required: install it (apt-get install -y wrk) and retry" >&2; exit 1; }
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server (for the Redis figures)" >&2
  apt_install redis-server || echo "redis-server unavailable: the report will have no Redis figures" >&2
fi
if ! command -v perf >/dev/null 2>&1; then
  echo "installing perf (optional, for the profiles)" >&2
  apt_install linux-perf || echo "perf unavailable: the report will have no profiles" >&2
fi
if ! command -v taskset >/dev/null 2>&1; then
  apt_install util-linux || echo "taskset unavailable: server and load generator will share cores" >&2
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p bench
# The end-to-end and start-up figures need these; the suite reports it if they are missing.
cargo build --release -p transfer-bot -p graph-comms-emulator --bins ||
  echo "transfer-bot or graph-comms-emulator did not build: those figures will be missing" >&2
exec "$CARGO_TARGET_DIR/release/bench" suite --out bench/report.md "$@"
