#!/usr/bin/env bash
# The local stack: DynamoDB Local, kinesis-local and Redis on explicit 127.0.0.1 ports, each
# listening on loopback only (checked after each start; a start that fails stops the rest).
#
#   tools/stack.sh start    start each service, wait until it answers, create the table and
#                           the event stream from template.yaml
#   tools/stack.sh stop     stop what `start` started, by the PIDs it recorded
#   tools/stack.sh env      print the environment that points the SDK and the code at it
#   tools/stack.sh status   say what runs
#
# Configuration (environment, with defaults):
#   CHAT_STACK_DIR=.local-stack        PID files and logs
#   CHAT_DYNAMODB_PORT=8000            DynamoDB Local
#   CHAT_KINESIS_PORT=4568             kinesis-local, plain HTTP (its TLS port is this + 1); its stream
#                                      and shard limits are raised: every test makes its own stream
#   CHAT_REDIS_PORT=6390               redis-server
#   TABLE_NAME=chat-local              the table, created as template.yaml defines ChatTable
#   EVENT_STREAM_NAME=chat-events-local  the Kinesis stream, as template.yaml defines EventStream
#   CHAT_STACK_PREBUILT=0              1: create them with target/$CARGO_PROFILE/local-stack as
#                                      built, not `cargo run` (tools/bench-hot.sh BENCH_NO_BUILD=1)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${CHAT_STACK_DIR:-$root/.local-stack}
dynamodb_port=${CHAT_DYNAMODB_PORT:-8000}
kinesis_port=${CHAT_KINESIS_PORT:-4568}
kinesis_tls_port=$((kinesis_port + 1))
redis_port=${CHAT_REDIS_PORT:-6390}
table=${TABLE_NAME:-chat-local}
stream=${EVENT_STREAM_NAME:-chat-events-local}

log() { printf '[stack] %s\n' "$*" >&2; }

print_env() {
  cat <<ENV
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$dynamodb_port
export AWS_ENDPOINT_URL_DYNAMODB_STREAMS=http://127.0.0.1:$dynamodb_port
export AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:$kinesis_port
export REDIS_URL=redis://127.0.0.1:$redis_port
export TABLE_NAME=$table
export EVENT_STREAM_NAME=$stream
export AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI=http://127.0.0.1:${GATEWAY_PORT:-3000}/local
ENV
}

# Answers when something accepts connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port pid
  local name=$1 port=$2 pid=$3
  for _ in $(seq 1 300); do
    if port_open "$port"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during start; its log:"; tail -n 30 "$dir/$name.log" >&2; return 1
    fi
    sleep 0.2
  done
  log "$name did not answer on 127.0.0.1:$port within 60 s"; return 1
}

running() { # name: true when its recorded PID is alive
  local pidfile="$dir/$1.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

launch() { # name port command...: start in the background, record the PID, wait for the port
  local name=$1 port=$2; shift 2
  if running "$name"; then log "$name already runs (pid $(cat "$dir/$name.pid"))"; return 0; fi
  if port_open "$port"; then
    log "port $port is taken by another process: set CHAT_${name^^}_PORT"; return 1
  fi
  "$@" >"$dir/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/$name.pid"
  wait_port "$name" "$port" "$pid" || return 1
  loopback_only "$name" "$port" || return 1
  log "$name on 127.0.0.1:$port (pid $pid)"
}

# Fails when anything listens on $2 on an address other than loopback: the emulators answer any
# caller without credentials, so they must not be reachable from the network.
loopback_only() { # name port
  local name=$1 port=$2 addresses
  addresses=$(ss -Hltn "sport = :$port" | awk '{print $4}')
  [ -n "$addresses" ] || { log "$name: nothing listens on port $port"; return 1; }
  if grep -qvE '^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]|\[::1\]):' <<<"$addresses"; then
    log "$name listens on $(tr '\n' ' ' <<<"$addresses")beyond loopback"
    return 1
  fi
}

start_dynamodb() {
  # No -sharedDb: each access key (with its region) has a database of its own. The stack's tools
  # use `local`; each test process its own key, because a DynamoDB Local database slows as it
  # grows (after the whole suite, a transaction took 3 to 10 times as long), and one test's
  # data must not slow another's.
  launch dynamodb "$dynamodb_port" "$root/tools/emulators/dynamodb-local.sh" "$dynamodb_port" -Xmx512m
}

start_kinesis() {
  launch kinesis "$kinesis_port" env CREATE_STREAM_DURATION=50ms DELETE_STREAM_DURATION=50ms \
    LOG_LEVEL=WARN SHARD_LIMIT=100000 ON_DEMAND_STREAM_COUNT_LIMIT=10000 \
    "$root/tools/emulators/kinesis-local.sh" "$kinesis_port" "$kinesis_tls_port"
  loopback_only kinesis "$kinesis_tls_port" || return 1
}

start_redis() {
  launch redis "$redis_port" redis-server --bind 127.0.0.1 --port "$redis_port" \
    --save '' --appendonly no --protected-mode yes
}

setup_resources() {
  log "creating table $table and stream $stream from template.yaml"
  (
    eval "$(print_env)"
    cd "$root"
    local built=$root/target/${CARGO_PROFILE:-ci}/local-stack
    if [ "${CHAT_STACK_PREBUILT:-0}" = 1 ] && [ -x "$built" ]; then
      "$built" setup --table "$table" --stream "$stream" --template "$root/template.yaml"
    else
      cargo run --quiet --profile "${CARGO_PROFILE:-ci}" -p local-stack -- \
        setup --table "$table" --stream "$stream" --template "$root/template.yaml"
    fi
  ) >&2
}

stop_one() { # name
  local name=$1 pidfile="$dir/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -CONT "$pid" 2>/dev/null || true # a frozen process cannot act on TERM
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start)
    mkdir -p "$dir"
    if ! { start_dynamodb && start_kinesis && start_redis && setup_resources; }; then
      for name in redis kinesis dynamodb; do stop_one "$name"; done
      exit 1
    fi
    ;;
  stop)
    for name in redis kinesis dynamodb; do stop_one "$name"; done
    ;;
  env)
    print_env
    ;;
  status)
    for name in dynamodb kinesis redis; do
      if running "$name"; then echo "$name: running (pid $(cat "$dir/$name.pid"))"; else echo "$name: stopped"; fi
    done
    ;;
  *)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
