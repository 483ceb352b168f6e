#!/usr/bin/env bash
# Runs the whole API locally: the local stack (DynamoDB Local, kinesis-mock, Redis) and the local
# gateway with its token issuer, until Ctrl-C, which stops everything this script started.
# Installs what is missing first (tools/install.sh). Port: GATEWAY_PORT (default 3000).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${GATEWAY_PORT:-3000}
gateway_pid=

stop_all() {
  if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
    kill -TERM "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
    echo "[run] stopped the gateway (pid $gateway_pid)" >&2
  fi
  tools/stack.sh stop
}

tools/install.sh
trap stop_all EXIT
trap 'exit 130' INT TERM
tools/stack.sh stop
tools/stack.sh start
eval "$(tools/stack.sh env)"

cargo build --quiet --profile ci -p local-gateway
# The web client (examples/web-client), which the gateway serves at / (from WEB_CLIENT_DIR, by
# default its dist/).
(cd examples/web-client && npm run --silent build >/dev/null) ||
  echo "[run] the web client did not build (above); the API runs without it" >&2
target/ci/local-gateway serve --port "$port" &
gateway_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$gateway_pid" 2>/dev/null || { echo "[run] the gateway did not start" >&2; exit 1; }
  sleep 0.1
done

cat <<MSG

The web client at      http://127.0.0.1:$port/   (sign in with any user id; two tabs, two users)
The HTTP API runs at   http://127.0.0.1:$port
The WebSocket API at   ws://127.0.0.1:$port/local?ticket=…   (or ?token=<JWT>)
@connections at        http://127.0.0.1:$port/local/@connections/{id}

Get a token (RS256, from the local issuer, valid 12 hours):
  target/ci/local-gateway token ada --name "Ada Lovelace"
  curl -s 'http://127.0.0.1:$port/_local/token?user=ada&name=Ada'

Then:
  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$port/me
  curl -s -X POST -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$port/realtime/tickets

Point another shell at the same stack with: eval "\$(tools/stack.sh env)"
Press Ctrl-C to stop everything.
MSG
wait "$gateway_pid"
