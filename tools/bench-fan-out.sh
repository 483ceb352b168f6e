#!/usr/bin/env bash
# The fan-out benchmark, one command: one message at a time into a group (256 members with two
# sockets each: 511 sockets to reach), timed until the last socket has it and by the duration of
# the stream-fan-out invocation that posted it (the gateway's log reports it), for several
# PUSH_CONCURRENCY settings side by side, and held to a floor measured in the same run: a bare
# client that makes the same posts (each message's event as it came, to the same 511 connections,
# at the same concurrency, signed as stream-fan-out) straight to the gateway's @connections. The
# ack is timed for each group size of BENCH_MEMBERS (2 and 256): with the fan-out off the send's
# path, a send's answer should not grow with the group. Starts a local stack of its own and, for
# each setting, a local gateway with it; the settings are interleaved over rounds, and each
# message's bare pass follows it, so that drift in the machine hits them alike. Results:
# docs/benchmarks/fan-out.md.
#
#   tools/bench-fan-out.sh                       settings 1 4 16 64 256, groups of 2 and 256,
#                                                2 rounds of 10 messages
#   BENCH_SETTINGS="8 16 32" BENCH_ROUNDS=3 tools/bench-fan-out.sh
#   BENCH_MEMBERS="2 16 256" BENCH_MESSAGES=5 …  group sizes; messages per group and run
#   BENCH_NAME=fan-out-close …                   results to docs/benchmarks/$BENCH_NAME.md
#   BENCH_POLL_MS=250                            the stream poller's pause after an empty read
#                                                (CHAT_STREAM_IDLE_POLL_MS; 250 is AWS's rate)
#
# The gateway is the `ci` build with the function handlers in its process; its @connections
# posts go over loopback HTTP to itself, as the functions' posts go to API Gateway, and the bare
# client's (in load-gen, tools/load-gen/src/bare.rs) go to the same endpoint through the same IAM
# check. Exits non-zero when a socket misses a message or the sender its ack.
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
members=${BENCH_MEMBERS:-2 256}
# The stream poller's pause after an empty read: AWS's mapping polls a shard four times a second.
poll=${BENCH_POLL_MS:-250}
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
    start_gateway "$port" "$work/gateway-$setting.log" PUSH_CONCURRENCY="$setting" \
      CHAT_STREAM_IDLE_POLL_MS="$poll" RUST_LOG=warn,local_gateway::fan_out=info
    trap 'stop_gateway; bench_stack_stop' EXIT
    for size in $members; do
      target/ci/load-gen fan-out --url "http://127.0.0.1:$port" --members "$size" --sockets 2 \
        --messages "$messages" --label "$setting" --push-concurrency "$setting" \
        --gateway-log "$work/gateway-$setting.log" \
        | sed "s/^| $setting |/| $setting | $round |/" | tee -a "$rows" || status=1
    done
    stop_gateway
  done
done

{
  echo "Command: \`${BENCH_NAME:+BENCH_NAME=$name }BENCH_SETTINGS=\"$settings\" BENCH_MEMBERS=\"$members\" BENCH_ROUNDS=$rounds BENCH_MESSAGES=$messages tools/bench-fan-out.sh\` ($rounds rounds of $messages messages per group size)"
  echo
  machine_facts
  echo
  echo "One group for each size of \`BENCH_MEMBERS\` ($members members), 2 sockets each: a message"
  echo "reaches every socket but the sender's, which gets the ack. Times in ms from the send to the"
  echo "arrival, medians over the messages of a run. *First* and *last socket*: the first and last"
  echo "of those sockets to have the message (\`message.created\`, posted by \`stream-fan-out\` from"
  echo "the table's stream): send → delivery, with the local poller modelled on AWS's (a pause of"
  echo "$poll ms after a read that found nothing: AWS polls a stream shard four times a second;"
  echo "\`BENCH_POLL_MS\`). *Fan-out invocation*: the"
  echo "duration of the \`stream-fan-out\` invocation that posted the message, from its start to"
  echo "its last post's answer (reported by the gateway as Lambda's REPORT line has it): its reads"
  echo "of the members and their connections and every post. *Bare client*: the floor, measured"
  echo "after each message on the same sockets: load-gen posts that message's event, as a socket"
  echo "got it, to the same connections (every one but the sender's), straight to the gateway's"
  echo "\`@connections\`, signed as \`stream-fan-out\` (the same IAM check), PUSH_CONCURRENCY"
  echo "posts in flight; timed from its first post to its last post's answer, with no reads before"
  echo "it. The goal: the fan-out invocation within 1.3× the bare client. *Sockets missed*: pushes"
  echo "that never came, and acks that never came to the sender."
  echo
  echo "| PUSH_CONCURRENCY | round | members | sockets reached | messages | ack, median | first socket, median | last socket, median | last socket, min | last socket, max | every socket, median | fan-out invocation, median | bare client, median | invocation / bare | sockets missed |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  cat "$rows"
  echo
  echo "Per setting and group size, the means over the rounds of the medians; *invocation / bare*"
  echo "is the ratio of those means (the goal: at most 1.3), *ratio to default* the fan-out"
  echo "invocation's against the default setting's ($default) for the same size:"
  echo
  echo "| PUSH_CONCURRENCY | members | first socket (ms) | last socket (ms) | fan-out invocation (ms) | bare client (ms) | invocation / bare | ratio to default |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'|' -v default="$default" '
    {
      for (i = 2; i <= NF; i++) gsub(/ /, "", $i)
      key = $2 SUBSEP $4
      first[key] += $8; last[key] += $9; n[key]++
      if ($13 != "-") { inv[key] += $13; ni[key]++ }
      if ($14 != "-") { bare[key] += $14; nb[key]++ }
      if (!(key in seen)) { order[++k] = key; seen[key] = 1 }
    }
    END {
      for (i = 1; i <= k; i++) {
        split(order[i], part, SUBSEP); s = part[1]; m = part[2]; key = order[i]
        base = default SUBSEP m
        v = (ni[key] > 0) ? inv[key] / ni[key] : 0
        b = (nb[key] > 0) ? bare[key] / nb[key] : 0
        d = (ni[base] > 0) ? inv[base] / ni[base] : 0
        printf "| %s%s | %s | %.1f | %.1f | %s | %s | %s | %s |\n", s, (s == default ? " (default)" : ""), m,
          first[key] / n[key], last[key] / n[key], (v > 0 ? sprintf("%.1f", v) : "-"),
          (b > 0 ? sprintf("%.1f", b) : "-"), (v > 0 && b > 0 ? sprintf("%.2f", v / b) : "-"),
          (v > 0 && d > 0 ? sprintf("%.2f", v / d) : "-")
      }
    }' "$rows"
  echo
  echo "The ack by group size: the mean of its medians over every setting and round (the fan-out"
  echo "no longer runs in the send's invocation, so no setting should move it), and its ratio to"
  echo "the smallest group's:"
  echo
  echo "| members | ack (ms) | ratio to the smallest group |"
  echo "|---:|---:|---:|"
  awk -F'|' '
    {
      for (i = 2; i <= NF; i++) gsub(/ /, "", $i)
      m = $4 + 0; ack[m] += $7; n[m]++
      if (!(m in seen)) { order[++k] = m; seen[m] = 1 }
      if (small == "" || m < small) small = m
    }
    END {
      base = (small in n) ? ack[small] / n[small] : 0
      for (i = 1; i <= k; i++) {
        m = order[i]; mean = ack[m] / n[m]
        printf "| %s | %.1f | %s |\n", m, mean, (base > 0 ? sprintf("%.2f", mean / base) : "-")
      }
    }' "$rows"
} >"$out/$name.md"
cat "$out/$name.md"
python3 tools/bench/report.py
exit "$status"
