#!/usr/bin/env bash
# The whole test suite: every crate, app and example, doc tests included.
#
# The Redis store's tests need a Redis: this script starts a private one
# (loopback, a free port, no persistence, a temporary directory), exports
# GRAPH_COMMS_REDIS_URL for the tests and stops it on exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "scripts/test.sh: redis-server is not installed; install it with: apt-get install redis-server" >&2
  exit 1
fi
# The clock-skew failover test runs one bot process under libfaketime.
if [[ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ]]; then
  echo "scripts/test.sh: libfaketime is not installed; install it with: apt-get install faketime" >&2
  exit 1
fi

redis_dir="$(mktemp -d "${TMPDIR:-/tmp}/graph-comms-redis.XXXXXX")"
redis_pid=""
stop_redis() {
  if [[ -n "$redis_pid" ]] && kill -0 "$redis_pid" 2>/dev/null; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$redis_dir"
}
trap stop_redis EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Whether something already listens on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts redis-server on a free loopback port; a port taken between the check
# and the bind makes redis-server exit, and another port is tried.
start_redis() {
  local attempt port
  for attempt in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    port_in_use "$port" && continue
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
      --dir "$redis_dir" --daemonize no --logfile "$redis_dir/redis.log" &
    redis_pid=$!
    for _ in $(seq 1 100); do
      if ! kill -0 "$redis_pid" 2>/dev/null; then
        break
      fi
      if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == "PONG" ]]; then
        export GRAPH_COMMS_REDIS_URL="redis://127.0.0.1:$port/"
        echo "scripts/test.sh: private redis-server (pid $redis_pid) at $GRAPH_COMMS_REDIS_URL" >&2
        return 0
      fi
      sleep 0.05
    done
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
    echo "scripts/test.sh: redis-server did not answer on port $port (attempt $attempt); log:" >&2
    tail -n 5 "$redis_dir/redis.log" >&2 2>/dev/null || true
  done
  echo "scripts/test.sh: could not start a private redis-server" >&2
  return 1
}

start_redis

cargo test --workspace --all-targets
cargo test --workspace --doc
