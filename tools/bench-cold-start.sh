#!/usr/bin/env bash
# The cold-start benchmark, one command: builds every function's release bootstrap
# (tools/build-release.sh) and the hello-world floor (tools/cold-start-floor) with the same
# profile, starts a local stack and gateway of its own, and starts each bootstrap again and again
# under AWS's Runtime Interface Emulator (`local-invoke cold-start`). Results:
# docs/benchmarks/cold-start.md.
#
#   tools/bench-cold-start.sh                      build, then 10 starts of each, 5 warm invokes
#   BENCH_NO_BUILD=1 tools/bench-cold-start.sh     use the bootstraps already built
#   BENCH_STARTS=20 BENCH_WARM=10 tools/bench-cold-start.sh
#   BENCH_COMPARE=NAME=VALUE                       the comparison column: each function started
#                                                  again with that variable (default
#                                                  TLS_ROOTS=system; empty: no such column)
#
# Bootstraps come from $BENCH_LAMBDA_DIR, by default ${CARGO_TARGET_DIR:-target}/lambda/. The release build takes about half
# an hour on two cores the first time. Exits 1 when a bootstrap misses an aim (init within 2× the
# floor, under 8 MB, peak RSS under 32 MB). Stops everything it started by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[bench-cold-start] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib/gateway.sh
. tools/lib/gateway.sh
# shellcheck source=lib/bench.sh
. tools/lib/bench.sh

port=${BENCH_GATEWAY_PORT:-3300}
starts=${BENCH_STARTS:-10}
warm=${BENCH_WARM:-5}
lambda_dir=${BENCH_LAMBDA_DIR:-${CARGO_TARGET_DIR:-$root/target}/lambda}
compare=${BENCH_COMPARE-TLS_ROOTS=system}
compare_args=()
[ -z "$compare" ] || compare_args=(--compare "$compare")
out=$root/docs/benchmarks
mkdir -p "$out" target/bench/cold-start
[ -x tools/.venv/bin/sam ] || tools/install.sh
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  tools/build-release.sh
  PATH="$root/tools/.venv/bin:$PATH" cargo lambda build --release -p cold-start-floor
fi
cargo build --quiet --profile ci --locked -p local-gateway -p local-invoke

trap 'stop_gateway; bench_stack_stop' EXIT
bench_stack_start
port_open "$port" && die "port $port is taken: set BENCH_GATEWAY_PORT"
start_gateway "$port" target/bench/cold-start/gateway.log RUST_LOG=warn
trap 'stop_gateway; bench_stack_stop' EXIT

status=0
GATEWAY_PORT=$port AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI=http://127.0.0.1:$port/local RUST_LOG=info \
  target/ci/local-invoke cold-start --bootstraps "$lambda_dir" \
  --floor "$lambda_dir/cold-start-floor/bootstrap" --starts "$starts" --warm "$warm" \
  "${compare_args[@]}" >target/bench/cold-start/table.md || status=$?
[ "$status" -le 1 ] || die "the benchmark failed (exit $status)"
{
  echo "Command: \`tools/bench-cold-start.sh\` (BENCH_STARTS=$starts, BENCH_WARM=$warm)"
  echo
  machine_facts
  echo
  echo "Release bootstraps (x86_64; profile \`release\`: opt-level s, fat LTO, one codegen unit, stripped,"
  echo "panic = abort) under the Runtime Interface Emulator from aws-sam-cli $(tools/.venv/bin/pip show aws-sam-cli 2>/dev/null | sed -n 's/^Version: //p'),"
  echo "against a local stack; each invoked with its first \`events/\` file."
  echo
  cat target/bench/cold-start/table.md
} >"$out/cold-start.md"
cat "$out/cold-start.md"
python3 tools/bench/report.py
exit "$status"
