#!/usr/bin/env bash
# The fan-out benchmark, one command: one message at a time into a group of 256 members with two
# sockets each (511 sockets to reach), timed until the last socket has it, for several
# PUSH_CONCURRENCY settings side by side. Starts a local stack of its own and, for each setting,
# a local gateway with it; the settings are interleaved over rounds so that drift in the machine
# hits them alike. Results: docs/benchmarks/fan-out.md.
#
#   tools/bench-fan-out.sh                       settings 1 4 16 64 256, 2 rounds of 10 messages
#   BENCH_SETTINGS="8 16 32" BENCH_ROUNDS=3 tools/bench-fan-out.sh
#   BENCH_NAME=fan-out-close …                   results to docs/benchmarks/$BENCH_NAME.md
#
# The gateway is the `ci` build with the function handlers in its process; its @connections
# posts go over loopback HTTP to itself, as the functions' posts go to API Gateway. Exits non-zero
# when a socket misses a message.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[bench-fan-out] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib/gateway.sh
. tools/lib/gateway.sh
# shellcheck source=lib/bench.sh
. tools/lib/bench.sh

port=${BENCH_GATEWAY_PORT:-3300}
settings=${BENCH_SETTINGS:-1 4 16 64 256}
rounds=${BENCH_ROUNDS:-2}
messages=${BENCH_MESSAGES:-10}
members=${BENCH_MEMBERS:-256}
default=$(sed -n 's/^pub const DEFAULT_IN_FLIGHT: usize = \([0-9]*\);/\1/p' shared/src/adapters/push.rs)
out=$root/docs/benchmarks
name=${BENCH_NAME:-fan-out}
work=$root/target/bench/fan-out
mkdir -p "$out" "$work"
[ -x tools/.venv/bin/sam ] || tools/install.sh
cargo build --quiet --profile ci --locked -p local-gateway -p load-gen
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

trap 'stop_gateway; bench_stack_stop' EXIT
bench_stack_start
port_open "$port" && die "port $port is taken: set BENCH_GATEWAY_PORT"

rows=$work/rows.md
: >"$rows"
status=0
for round in $(seq 1 "$rounds"); do
  for setting in $settings; do
    log "round $round, PUSH_CONCURRENCY=$setting"
    start_gateway "$port" "$work/gateway-$setting.log" PUSH_CONCURRENCY="$setting" RUST_LOG=warn
    trap 'stop_gateway; bench_stack_stop' EXIT
    target/ci/load-gen fan-out --url "http://127.0.0.1:$port" --members "$members" --sockets 2 \
      --messages "$messages" --label "$setting" | sed "s/^| $setting |/| $setting | $round |/" \
      | tee -a "$rows" || status=1
    stop_gateway
  done
done

{
  echo "Command: \`${BENCH_NAME:+BENCH_NAME=$name }BENCH_SETTINGS=\"$settings\" BENCH_ROUNDS=$rounds tools/bench-fan-out.sh\` ($rounds rounds of $messages messages)"
  echo
  machine_facts
  echo
  echo "One group of $members members, 2 sockets each: each message reaches $((members * 2 - 1)) sockets"
  echo "(the sender's own socket gets the ack). Times in ms from the send to the arrival."
  echo
  echo "| PUSH_CONCURRENCY | round | messages | last socket, median | last socket, min | last socket, max | every socket, median | ack, median | sockets missed |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  cat "$rows"
  echo
  echo "Per setting, the mean over the rounds of the last socket's median, and its ratio to the default ($default):"
  echo
  echo "| PUSH_CONCURRENCY | last socket (ms) | ratio to default |"
  echo "|---:|---:|---:|"
  awk -F'|' -v default="$default" '
    { gsub(/ /, "", $2); sum[$2] += $5; n[$2]++; if (!($2 in seen)) { order[++k] = $2; seen[$2] = 1 } }
    END {
      base = (default in n) ? sum[default] / n[default] : 0
      for (i = 1; i <= k; i++) {
        s = order[i]; mean = sum[s] / n[s]
        printf "| %s%s | %.0f | %s |\n", s, (s == default ? " (default)" : ""), mean, (base > 0 ? sprintf("%.2f", mean / base) : "-")
      }
    }' "$rows"
} >"$out/$name.md"
cat "$out/$name.md"
python3 tools/bench/report.py
exit "$status"
