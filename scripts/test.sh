#!/usr/bin/env bash
# The whole test suite: every crate, app and example, doc tests included.
#
# The Redis store's tests need Redis. This script starts, on loopback ports
# with no persistence in a temporary directory, and stops on exit (even on
# failure):
# - a private redis-server, exported as GRAPH_COMMS_REDIS_URL;
# - a private TLS-only redis-server with certificates made now with openssl,
#   exported as GRAPH_COMMS_REDIS_TLS_URL and GRAPH_COMMS_REDIS_TLS_CA (the CA's
#   PEM file); tests that need other certificates start their own;
# - a private three-node Redis Cluster, exported as GRAPH_COMMS_REDIS_CLUSTER_URL
#   (comma-separated seeds); tests that restart a cluster node start their own
#   (graph_comms_testkit::RedisCluster).
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

if ! command -v openssl >/dev/null 2>&1; then
  echo "scripts/test.sh: openssl is not installed (it makes the TLS Redis's certificates); install it with: apt-get install openssl" >&2
  exit 1
fi

redis_dir="$(mktemp -d "${TMPDIR:-/tmp}/graph-comms-redis.XXXXXX")"
redis_pid=""
tls_pid=""
cluster_pids=()
stop_redis() {
  local pid
  for pid in "$redis_pid" "$tls_pid" "${cluster_pids[@]}"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
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

# A loopback port nothing listens on (the cluster bus needs its own: port +
# 10000 may be taken or above 65535).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    port_in_use "$port" || { echo "$port"; return 0; }
  done
}

# Three cluster-enabled nodes joined with redis-cli --cluster create.
start_redis_cluster() {
  local attempt i port bus dir seeds ok
  for attempt in $(seq 1 5); do
    cluster_pids=()
    seeds=()
    for i in 1 2 3; do
      port=$(free_port)
      bus=$(free_port)
      dir="$redis_dir/cluster-$attempt/node-$port"
      mkdir -p "$dir"
      redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes --cluster-port "$bus" \
        --cluster-config-file "$dir/nodes.conf" --save '' --appendonly no \
        --dir "$dir" --daemonize no --logfile "$dir/redis.log" &
      cluster_pids+=($!)
      seeds+=("127.0.0.1:$port")
    done
    ok=1
    for i in "${seeds[@]}"; do
      for _ in $(seq 1 100); do
        [[ "$(redis-cli -h 127.0.0.1 -p "${i#*:}" ping 2>/dev/null)" == "PONG" ]] && break
        sleep 0.05
      done
    done
    if redis-cli --cluster create "${seeds[@]}" --cluster-replicas 0 --cluster-yes >"$redis_dir/cluster-create.log" 2>&1; then
      for _ in $(seq 1 100); do
        ok=0
        for i in "${seeds[@]}"; do
          redis-cli -h 127.0.0.1 -p "${i#*:}" cluster info 2>/dev/null | grep -q "cluster_state:ok" || ok=1
        done
        [[ $ok == 0 ]] && break
        sleep 0.1
      done
    fi
    if [[ $ok == 0 ]]; then
      GRAPH_COMMS_REDIS_CLUSTER_URL=""
      for i in "${seeds[@]}"; do
        GRAPH_COMMS_REDIS_CLUSTER_URL+="${GRAPH_COMMS_REDIS_CLUSTER_URL:+,}redis://$i/"
      done
      export GRAPH_COMMS_REDIS_CLUSTER_URL
      echo "scripts/test.sh: private Redis Cluster (pids ${cluster_pids[*]}) at $GRAPH_COMMS_REDIS_CLUSTER_URL" >&2
      return 0
    fi
    echo "scripts/test.sh: the Redis Cluster did not form (attempt $attempt):" >&2
    tail -n 5 "$redis_dir/cluster-create.log" >&2 2>/dev/null || true
    for i in "${cluster_pids[@]}"; do kill "$i" 2>/dev/null || true; wait "$i" 2>/dev/null || true; done
    cluster_pids=()
  done
  echo "scripts/test.sh: could not start a private Redis Cluster" >&2
  return 1
}

# A CA and a server certificate for 127.0.0.1, made now, and a redis-server
# that serves only TLS with them (as Azure Cache for Redis does on 6380).
start_redis_tls() {
  local dir="$redis_dir/tls" port attempt
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=graph-comms test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>"$dir/openssl.log"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>>"$dir/openssl.log"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>>"$dir/openssl.log"
  for attempt in $(seq 1 20); do
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port 0 --tls-port "$port" --tls-cert-file "$dir/server.crt" \
      --tls-key-file "$dir/server.key" --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no \
      --save '' --appendonly no --dir "$dir" --daemonize no --logfile "$dir/redis.log" &
    tls_pid=$!
    for _ in $(seq 1 100); do
      kill -0 "$tls_pid" 2>/dev/null || break
      if [[ "$(redis-cli --tls --cacert "$dir/ca.crt" -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == "PONG" ]]; then
        export GRAPH_COMMS_REDIS_TLS_URL="rediss://127.0.0.1:$port/"
        export GRAPH_COMMS_REDIS_TLS_CA="$dir/ca.crt"
        echo "scripts/test.sh: private TLS redis-server (pid $tls_pid) at $GRAPH_COMMS_REDIS_TLS_URL" >&2
        return 0
      fi
      sleep 0.05
    done
    kill "$tls_pid" 2>/dev/null || true
    wait "$tls_pid" 2>/dev/null || true
    tls_pid=""
    echo "scripts/test.sh: the TLS redis-server did not answer on port $port (attempt $attempt); log:" >&2
    tail -n 5 "$dir/redis.log" "$dir/openssl.log" >&2 2>/dev/null || true
  done
  echo "scripts/test.sh: could not start a private TLS redis-server" >&2
  return 1
}

start_redis
start_redis_tls
start_redis_cluster

cargo test --workspace --all-targets
cargo test --workspace --doc
