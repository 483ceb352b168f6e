#!/usr/bin/env bash
# Smoke test of a running stack, end to end as a client sees it (tools/smoke: two users' profiles,
# a group, a ticket-opened socket each, a send the other socket hears, /changes, a read receipt the
# sender's socket hears, then the message unsent and both members gone from the group). Exits
# non-zero on the first step that fails, naming it and what was answered.
#
#   A deployed stack (the URLs from its outputs HttpApiUrl and WebSocketUrl, via the SAM CLI):
#     SMOKE_TOKEN_A=<JWT> SMOKE_TOKEN_B=<JWT> tools/smoke.sh --stack serverless-chat [--region R]
#   Any stack, given its URLs:
#     SMOKE_TOKEN_A=<JWT> SMOKE_TOKEN_B=<JWT> tools/smoke.sh --http https://… --ws wss://…/<stage>
#   The local stack (what CI runs): a local gateway of its own on SMOKE_GATEWAY_PORT (default
#   3500) against the running stack (tools/stack.sh start; eval "$(tools/stack.sh env)"), with
#   tokens of two fresh users from the gateway's issuer; the gateway is stopped by its PID:
#     tools/smoke.sh --local
#
# The two tokens are two different users' tokens from the stack's identity provider (docs/deploy.md
# says how to get them from the Cognito user pool the stack can create). They are read from the
# environment, not the command line, so that they do not show in the process list.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[smoke] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

http= ws= stack= region= local=0
while [ $# -gt 0 ]; do
  case $1 in
    --http) http=$2; shift 2 ;;
    --ws) ws=$2; shift 2 ;;
    --stack) stack=$2; shift 2 ;;
    --region) region=$2; shift 2 ;;
    --local) local=1; shift ;;
    *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done

cargo build --quiet --profile ci --locked -p smoke
if [ "$local" = 1 ]; then
  # shellcheck source=lib/gateway.sh
  . tools/lib/gateway.sh
  require_stack_env
  port=${SMOKE_GATEWAY_PORT:-3500}
  port_open "$port" && die "port $port is taken: set SMOKE_GATEWAY_PORT"
  cargo build --quiet --profile ci --locked -p local-gateway
  mkdir -p target/smoke
  start_gateway "$port" target/smoke/gateway.log
  log "gateway on 127.0.0.1:$port (pid $gateway_pid, log target/smoke/gateway.log)"
  run=smoke-$(date +%s)-$$
  SMOKE_TOKEN_A=$(target/ci/local-gateway token "$run-a" --name "Smoke A")
  SMOKE_TOKEN_B=$(target/ci/local-gateway token "$run-b" --name "Smoke B")
  export SMOKE_TOKEN_A SMOKE_TOKEN_B
  http=http://127.0.0.1:$port ws=ws://127.0.0.1:$port/local
elif [ -n "$stack" ]; then
  [ -x tools/.venv/bin/sam ] || die "the SAM CLI is not installed: run tools/install.sh"
  outputs=$(tools/.venv/bin/sam list stack-outputs --stack-name "$stack" --output json \
    ${region:+--region "$region"})
  output() {
    python3 -c 'import json, sys; print(next(o["OutputValue"] for o in json.load(sys.stdin) if o["OutputKey"] == sys.argv[1]))' "$1" <<<"$outputs"
  }
  http=$(output HttpApiUrl) ws=$(output WebSocketUrl)
fi
[ -n "$http" ] && [ -n "$ws" ] || die "give --local, --stack NAME, or --http URL and --ws URL"
log "HTTP $http, WebSocket $ws"
target/ci/smoke --http "$http" --ws "$ws"
