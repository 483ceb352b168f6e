#!/usr/bin/env bash
# What `sam local invoke <Function> -e <event>` does, without Docker: builds the bootstrap of every
# function (`chat-lambda`, which runs the function `_HANDLER` names) and runs it once under AWS's Runtime Interface Emulator (from the pinned aws-sam-cli
# wheel in tools/.venv), with the environment template.yaml gives it, pointed at the local stack.
#
#   tools/local-invoke.sh HttpGetMeFunction -e events/http/get-me.json
#   tools/local-invoke.sh http-send-message -e events/http/send-message.json
#   tools/local-invoke.sh HttpGetMeFunction -e events/http/get-me.json --bootstrap target/lambda/chat-lambda/bootstrap
#
# The function's answer goes to stdout, its logs (and the emulator's) to stderr. Start the stack
# first (tools/run-local.sh in another shell: it also serves @connections and the issuer's JWKS
# on GATEWAY_PORT, default 3000). Exit status 1 when the function failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ $# -ge 1 ] || { echo "usage: tools/local-invoke.sh <Function> -e <event.json> [--bootstrap <path>]" >&2; exit 2; }

[ -x tools/.venv/bin/sam ] || tools/install.sh
eval "$(tools/stack.sh env)"
cargo build --quiet --profile ci -p local-invoke
if [[ " $* " != *" --bootstrap "* ]]; then
  cargo build --quiet --profile ci -p chat-functions
fi
exec target/ci/local-invoke "$@"
