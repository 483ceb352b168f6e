# Sourced by the scripts that run a local gateway of their own against the stack
# (tools/fuzz-api.sh, tools/web-e2e.sh). They define `log` and `die` first.
#
#   require_stack_env                  the stack's environment (tools/stack.sh env) is set
#   start_gateway PORT LOG [VAR=value…]  serve target/ci/local-gateway on 127.0.0.1:PORT with
#                                      those variables, its output in LOG; waits until it answers
#                                      HTTP (not merely until its port is open)
#   stop_gateway                       stops it by PID (TERM, then KILL after 5 s); installed as
#                                      the EXIT trap by start_gateway

gateway_pid=

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The gateway answers HTTP: it binds its port before it has started the IAM proxy and written the
# door file (gateway-iam.json) that bootstraps read, and accepts only once both are done.
gateway_answers() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET /_local/jwks.json HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    IFS= read -r -t 5 line <&3 && [[ $line == HTTP/* ]]
  ) 2>/dev/null
}

require_stack_env() {
  local var
  for var in TABLE_NAME AWS_ENDPOINT_URL_DYNAMODB REDIS_URL; do
    [ -n "${!var:-}" ] || die "$var is not set: start the stack and eval \"\$(tools/stack.sh env)\" first"
  done
}

stop_gateway() {
  if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
    kill -TERM "$gateway_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$gateway_pid" 2>/dev/null && kill -KILL "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
    log "stopped the gateway (pid $gateway_pid)"
  fi
}

start_gateway() {
  local port=$1 gateway_log=$2
  shift 2
  local gateway=$root/target/ci/local-gateway
  [ -x "$gateway" ] || die "$gateway is missing: build it with cargo build --profile ci -p local-gateway"
  trap stop_gateway EXIT
  trap 'exit 130' INT TERM
  env "$@" AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI="http://127.0.0.1:$port/local" \
    RUST_LOG="${RUST_LOG:-info}" "$gateway" serve --port "$port" >"$gateway_log" 2>&1 &
  gateway_pid=$!
  for _ in $(seq 1 150); do
    gateway_answers "$port" && return 0
    kill -0 "$gateway_pid" 2>/dev/null || { tail -n 20 "$gateway_log" >&2; die "the gateway did not start"; }
    sleep 0.2
  done
  die "the gateway did not answer on 127.0.0.1:$port within 30 s"
}
