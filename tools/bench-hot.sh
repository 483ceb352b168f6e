#!/usr/bin/env bash
# The hot-conversation benchmark, one command: W writers, the members of one group, all write at
# the same instant (behind a barrier), one attempt each and no retries by the client: an HTTP send
# each, then a WebSocket send each, then the same reaction on one message each. Each phase is set
# against the floor (as many sends by the same writers one at a time into a second group, in the
# same run) and followed by a check that the conversation's seq and rev have no gap. Starts a
# local stack of its own and a local gateway, whose log says why requests failed. Results:
# docs/benchmarks/hot-conversation.md.
#
#   tools/bench-hot.sh                           50 and 200 writers
#   BENCH_WRITERS="10 50 100" tools/bench-hot.sh
#   BENCH_TIMEOUT=60                             seconds an attempt waits for its answer
#   BENCH_NAME=hot-x …                           results to docs/benchmarks/$BENCH_NAME.md
#   BENCH_NO_BUILD=1 tools/bench-hot.sh          the gateway, load-gen and local-stack as built in
#                                                target/ci (no cargo: shared/ need not build now)
#
# Exits 1 when an attempt is refused or a check finds a gap (the results are written first), 2
# when the run itself fails (the results file is left as it was).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[bench-hot] %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }
# shellcheck source=lib/gateway.sh
. tools/lib/gateway.sh
# shellcheck source=lib/bench.sh
. tools/lib/bench.sh

port=${BENCH_GATEWAY_PORT:-3300}
writers=${BENCH_WRITERS:-50 200}
timeout=${BENCH_TIMEOUT:-60}
out=$root/docs/benchmarks
name=${BENCH_NAME:-hot-conversation}
work=$root/target/bench/hot
read -ra counts <<<"$writers"
[ "${#counts[@]}" -gt 0 ] || die "BENCH_WRITERS is empty"
list=$(IFS=,; echo "${counts[*]}")
mkdir -p "$out" "$work"
[ -x tools/.venv/bin/sam ] || tools/install.sh
built=
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cargo build --quiet --profile ci --locked -p local-gateway -p load-gen
else
  for binary in local-gateway local-stack load-gen; do
    [ -x "target/ci/$binary" ] || die "target/ci/$binary is missing: build it or drop BENCH_NO_BUILD"
  done
  export CHAT_STACK_PREBUILT=1 # tools/stack.sh creates the table with target/ci/local-stack
  built=" BENCH_NO_BUILD=1: the gateway as built $(date -u -r target/ci/local-gateway '+%Y-%m-%d %H:%M') UTC."
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

trap 'stop_gateway; bench_stack_stop' EXIT
bench_stack_start
port_open "$port" && die "port $port is taken: set BENCH_GATEWAY_PORT"
start_gateway "$port" "$work/gateway.log" RUST_LOG=warn
trap 'stop_gateway; bench_stack_stop' EXIT

status=0
target/ci/load-gen hot --url "http://127.0.0.1:$port" --writers "$list" --timeout "$timeout" \
  --gateway-log "$work/gateway.log" >"$work/table.md" || status=$?
if [ "$status" -gt 1 ]; then
  log "load-gen hot failed (exit $status); $out/$name.md is left as it was"
  exit "$status"
fi

{
  echo "Command: \`${BENCH_NAME:+BENCH_NAME=$name }BENCH_WRITERS=\"${counts[*]}\" tools/bench-hot.sh\` (an attempt waits $timeout s for its answer)"
  echo
  read -r load1 load5 load15 _ </proc/loadavg
  echo "$(machine_facts)$built Load average at the end: $load1, $load5, $load15 (1, 5, 15 min; $(nproc) cores): the floor is in the same run, but what else runs on the machine moves the contended phases most."
  echo
  echo "W writers, the members of one group, each make one attempt at the same instant (behind a"
  echo "barrier), with no retries: an HTTP send, then a WebSocket \`sendMessage\` (answered by an \`ack\`"
  echo "or \`error\` frame on the same socket), then a 👍 on one message. The floor: as many HTTP sends"
  echo "by the same writers one at a time into a second group of the same members, before the phases."
  echo "Latency: of the accepted attempts, in ms from the attempt's start to its answer; the ratios are"
  echo "to the floor's p50. Refused: an error answer, or none within $timeout s. Seq gap-free: every"
  echo "message read back (seq 1 to \`lastSeq\`, each once), every accepted write there once. Rev"
  echo "gap-free: \`/changes\` from 0 ends at the conversation's \`rev\` with every message, as"
  echo "\`/messages\` has it, and a send phase's revisions are each held by one new message. A failed"
  echo "check is read again for up to 20 s. Voids: messages of \`\"kind\": \"void\"\`."
  echo
  cat "$work/table.md"
} >"$out/$name.md"
cat "$out/$name.md"
python3 tools/bench/report.py
exit "$status"
