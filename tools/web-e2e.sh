#!/usr/bin/env bash
# Builds the web client (examples/web-client) and runs its end-to-end tests in headless Chromium
# (Debian's /usr/bin/chromium, driven by playwright-core: no browser download) against a local
# gateway of its own.
#
# Expects a running local stack and its environment, as tools/test.sh has it:
#   tools/stack.sh start && eval "$(tools/stack.sh env)" && tools/web-e2e.sh
#
# Builds `local-gateway` (profile ci) if needed and the page (`npm run build`: type check, then
# vite), serves the gateway on 127.0.0.1:$WEB_E2E_GATEWAY_PORT with the page at `/` and CORS
# allowing exactly one other origin, http://127.0.0.1:$WEB_E2E_STATIC_PORT, where the
# deployed-mode test serves the built page from a static server of its own; runs
# `node --test` on examples/web-client/e2e/, and stops the gateway by its PID.
# Exits non-zero on any failure.
#
# Configuration (environment, with defaults):
#   WEB_E2E_GATEWAY_PORT=3200      the gateway's port (must be free)
#   WEB_E2E_STATIC_PORT=3201       the second origin's port (must be free)
#   WEB_E2E_ARTIFACTS=target/web-e2e   screenshots, the browsers' logs, the gateway's log
#   WEB_E2E_NO_BUILD=0             1: use target/ci/local-gateway and examples/web-client/dist as they are
#   CHROMIUM=/usr/bin/chromium     the browser
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

port=${WEB_E2E_GATEWAY_PORT:-3200}
static_port=${WEB_E2E_STATIC_PORT:-3201}
artifacts=${WEB_E2E_ARTIFACTS:-$root/target/web-e2e}
base=http://127.0.0.1:$port
gateway=$root/target/ci/local-gateway
client=$root/examples/web-client

log() { printf '[web-e2e] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=lib/gateway.sh
. tools/lib/gateway.sh
require_stack_env
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || die "${CHROMIUM:-/usr/bin/chromium} is missing: run tools/install.sh"
[ -d "$client/node_modules/playwright-core" ] || die "the web client's packages are missing: run tools/install.sh"

rm -rf "$artifacts"
mkdir -p "$artifacts"
gateway_log=$artifacts/gateway.log

if [ "${WEB_E2E_NO_BUILD:-0}" != 1 ]; then
  cargo build --quiet --profile ci --locked -p local-gateway
  log "building the page (examples/web-client/dist)"
  (cd "$client" && npm run --silent build >"$artifacts/build.log" 2>&1) ||
    { cat "$artifacts/build.log" >&2; die "the page did not build"; }
fi
[ -f "$client/dist/index.html" ] || die "$client/dist is missing: npm run build in examples/web-client"

port_open "$port" && die "port $port is taken: set WEB_E2E_GATEWAY_PORT"
port_open "$static_port" && die "port $static_port is taken: set WEB_E2E_STATIC_PORT"
start_gateway "$port" "$gateway_log" \
  CORS_ALLOWED_ORIGINS="http://127.0.0.1:$static_port" WEB_CLIENT_DIR="$client/dist"
log "gateway on $base (pid $gateway_pid, log $gateway_log), page at $base/, second origin http://127.0.0.1:$static_port"
log "chromium: $("${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null || echo unknown)"

status=0
(
  cd "$client"
  WEB_E2E_GATEWAY_URL=$base WEB_E2E_STATIC_PORT=$static_port WEB_E2E_ARTIFACTS=$artifacts \
    WEB_E2E_GATEWAY_BIN=$gateway node --test --test-concurrency=1 e2e/
) || status=$?
if [ "$status" -ne 0 ]; then
  log "the browser tests failed (exit $status); screenshots and logs are in $artifacts"
fi
# The gateway's log of the whole run holds no message body.
if grep -qF -e "Remember the milk" -e "Sent while offline" -e "Hello from another origin" "$gateway_log"; then
  log "the gateway's log ($gateway_log) holds a message body"
  status=1
fi
log "screenshots: $(find "$artifacts" -name '*.png' | wc -l) in $artifacts"
exit "$status"
