#!/usr/bin/env bash
# The load and delivery benchmark, one command: starts a local stack and a local gateway of its
# own, runs `load-gen delivery` (tools/load-gen) against them, plots latency over the run and
# writes the results to docs/benchmarks/$BENCH_NAME.md and docs/benchmarks/$BENCH_NAME-latency.png
# (BENCH_NAME: load).
#
#   tools/bench-load.sh [load-gen delivery flags…]     e.g. --rate 30 --seconds 120
#
# Defaults: 100 users × 2 sockets, groups of 50, 25, 10, 5, 3 and 2 plus 50 direct pairs,
# 5 sends/s for 60 s (what this stack sustains on two cores; `--rate 20` saturates it, which
# BENCHMARKS.md shows as the stress run: BENCH_NAME=load-stress ... --lenient), the API's default
# rate limits. The gateway is the `ci` build (as the tests use it), with the function handlers in
# its process, on 127.0.0.1:$BENCH_GATEWAY_PORT (3300). Exits non-zero when a message is lost,
# and (without --lenient) when a push is missed or duplicated or a send is refused. Stops
# everything it started by PID.
#
# BENCH_RESULTS_DIR (default docs/benchmarks) is where the results go; BENCH_NO_PLOT=1 skips the
# plot (and its Python packages). tools/test.sh runs a short run this way as a delivery test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[bench-load] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib/gateway.sh
. tools/lib/gateway.sh
# shellcheck source=lib/bench.sh
. tools/lib/bench.sh

port=${BENCH_GATEWAY_PORT:-3300}
out=${BENCH_RESULTS_DIR:-$root/docs/benchmarks}
name=${BENCH_NAME:-load}
work=$root/target/bench/load
mkdir -p "$out" "$work"
[ -x tools/.venv/bin/sam ] || tools/install.sh
[ "${BENCH_NO_PLOT:-0}" = 1 ] || bench_venv
cargo build --quiet --profile ci --locked -p local-gateway -p load-gen
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

trap 'stop_gateway; bench_stack_stop' EXIT
bench_stack_start
port_open "$port" && die "port $port is taken: set BENCH_GATEWAY_PORT"
start_gateway "$port" "$work/gateway.log"
trap 'stop_gateway; bench_stack_stop' EXIT

status=0
target/ci/load-gen delivery --url "http://127.0.0.1:$port" --out "$work" "$@" >"$work/report.md" || status=$?
[ "$status" -le 1 ] || die "load-gen failed (exit $status)"
if [ "${BENCH_NO_PLOT:-0}" != 1 ]; then
  tools/.bench-venv/bin/python tools/bench/plot_latency.py "$work/latency.csv" "$out/$name-latency.png" \
    "load-gen delivery $*"
fi
{
  echo "Command: \`tools/bench-load.sh $*\`"
  echo
  machine_facts
  echo
  cat "$work/report.md"
  echo
  echo "![latency over the run]($name-latency.png)"
} >"$out/$name.md"
cat "$out/$name.md"
[ "$out" != "$root/docs/benchmarks" ] || python3 tools/bench/report.py
exit "$status"
