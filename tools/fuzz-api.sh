#!/usr/bin/env bash
# Fuzzes the HTTP API against openapi.yaml with schemathesis, through the local gateway.
#
# Expects a running local stack and its environment, as tools/test.sh has it:
#   tools/stack.sh start && eval "$(tools/stack.sh env)" && tools/fuzz-api.sh
#
# Builds `local-gateway` (profile ci) if needed, serves it on 127.0.0.1:$FUZZ_GATEWAY_PORT with the
# rate limits raised, makes the fixtures the conversation and message routes need (profiles, two
# groups, two messages: without them those routes only answer 404), runs `st run` on openapi.yaml
# with every check but `unsupported_method` (tools/schemathesis.toml holds the configuration; the
# fixtures' ids and the token reach it through the environment), and stops the gateway by its PID.
# Exits non-zero on any finding.
#
# Configuration (environment, with defaults):
#   FUZZ_GATEWAY_PORT=3100     the gateway's port (must be free)
#   FUZZ_MAX_EXAMPLES=100      test cases per operation and phase (about a minute in all)
#   FUZZ_SEED=20261125         hypothesis seed: the same seed generates the same cases
#   FUZZ_WORKERS=1             concurrent schemathesis workers (with more, CPython 3.11.7's
#                              ast.parse, which hypothesis calls from every worker thread, fails
#                              now and then: "AST constructor recursion depth mismatch")
#   FUZZ_REPORT_DIR=target/fuzz-api   JUnit report, and the gateway's log
#   FUZZ_NO_BUILD=0            1: use target/ci/local-gateway as it is, without cargo build
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

port=${FUZZ_GATEWAY_PORT:-3100}
max_examples=${FUZZ_MAX_EXAMPLES:-100}
seed=${FUZZ_SEED:-20261125}
workers=${FUZZ_WORKERS:-1}
report_dir=${FUZZ_REPORT_DIR:-$root/target/fuzz-api}
base=http://127.0.0.1:$port
gateway=$root/target/ci/local-gateway

log() { printf '[fuzz] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=lib/gateway.sh
. tools/lib/gateway.sh
require_stack_env
[ -x tools/.venv/bin/st ] || die "schemathesis is not installed: run tools/install.sh"

mkdir -p "$report_dir"
gateway_log=$report_dir/gateway.log

# Cargo does nothing when the binary is up to date.
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then cargo build --quiet --profile ci --locked -p local-gateway; fi

port_open "$port" && die "port $port is taken: set FUZZ_GATEWAY_PORT"
# The rate limits are raised so that the fuzzer reaches the handlers (20 creations per hour would
# make nearly every createConversation case a 429); 429 itself is in the spec of every route.
start_gateway "$port" "$gateway_log" \
  RATE_LIMIT_CREATE_CONVERSATION=100000/60 RATE_LIMIT_SEND_MESSAGE=100000/60 \
  RATE_LIMIT_REALTIME=100000/60 RATE_LIMIT_DEFAULT=100000/60
log "gateway on $base (pid $gateway_pid, log $gateway_log)"

# The caller is unique to this run (no conversations or direct pairs from earlier runs). u1, u2
# and u3 are the users openapi.yaml's examples name (and tools/schemathesis.toml draws ids from):
# they only need a profile.
user=fuzz-$(date +%s)-$$
token() { "$gateway" token "$1" --name "$2" --ttl 3600; }
FUZZ_TOKEN=$(token "$user" "Fuzz caller")
export FUZZ_TOKEN
# Python is the venv's (schemathesis runs on it): no jq or curl needed. It prints the two groups'
# ids; tokens, bodies and answers stay out of the output.
fixtures=$(
  FUZZ_BASE=$base TOKEN_u1=$(token u1 "User u1") TOKEN_u2=$(token u2 "User u2") \
    TOKEN_u3=$(token u3 "User u3") tools/.venv/bin/python - <<'PY'
import json, os, sys, urllib.error, urllib.request

base = os.environ["FUZZ_BASE"]
caller = os.environ["FUZZ_TOKEN"]


def call(token, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        sys.exit(f"[fuzz] fixture: {method} {path} answered {error.code}")


# Profiles (made by GET /me), so that the users can be participants.
for token in [caller] + [os.environ[f"TOKEN_u{n}"] for n in (1, 2, 3)]:
    call(token, "GET", "/me")


def group(title):
    body = {"participantIds": ["u2", "u3"], "kind": "group", "title": title}
    return call(caller, "POST", "/conversations", body)["id"]


# The conversation of every {id} route, with message 1 (edits, reactions, reads) and message 2
# (unsent by unsendMessage, so that message 1 does not become a tombstone).
conversation = group("fuzz group")
for seq in (1, 2):
    body = {"clientMessageId": f"fixture-{seq}", "body": f"fixture message {seq}"}
    sent = call(caller, "POST", f"/conversations/{conversation}/messages", body)
    if sent["seq"] != seq:
        sys.exit(f"[fuzz] fixture: message {seq} got seq {sent['seq']}")
# A group of its own for removeMember, which removes u2 or u3, or makes the caller leave.
print(conversation, group("fuzz removals"))
PY
)
read -r FUZZ_CONVERSATION_ID FUZZ_REMOVE_CONVERSATION_ID <<<"$fixtures"
export FUZZ_CONVERSATION_ID FUZZ_REMOVE_CONVERSATION_ID
log "fixtures: caller $user, conversation $FUZZ_CONVERSATION_ID (messages 1 and 2)," \
  "removals in $FUZZ_REMOVE_CONVERSATION_ID"

log "schemathesis: seed $seed, at most $max_examples cases per operation and phase"
status=0
tools/.venv/bin/st --config-file tools/schemathesis.toml run openapi.yaml \
  --url "$base" \
  --seed "$seed" \
  --max-examples "$max_examples" \
  --workers "$workers" \
  --report junit --report-junit-path "$report_dir/junit.xml" \
  || status=$?
if [ "$status" -ne 0 ]; then
  log "schemathesis found problems (exit $status); the gateway's log is $gateway_log"
fi
# The gateway's log of the whole run holds no token and no message body.
if grep -qF -e "$FUZZ_TOKEN" -e "fixture message" "$gateway_log"; then
  log "the gateway's log ($gateway_log) holds a token or a message body"
  status=1
fi
exit "$status"
