#!/usr/bin/env bash
# The cold-start benchmark, one command: builds the release bootstrap (`chat-lambda`, every
# function in one binary) and the hello-world floor (tools/cold-start-floor) with the same profile
# (tools/build-release.sh), starts a local stack and gateway of its own, and starts each function
# again and again under AWS's Runtime Interface Emulator (`local-invoke cold-start`). Results:
# docs/benchmarks/cold-start.md.
#
#   tools/bench-cold-start.sh                      build, then 10 starts of each, 5 warm invokes
#   BENCH_NO_BUILD=1 tools/bench-cold-start.sh     use the bootstraps already built
#   BENCH_STARTS=20 BENCH_WARM=10 tools/bench-cold-start.sh
#   BENCH_ONLY=ws-authorizer,ws-ping tools/bench-cold-start.sh   those functions (and the floor)
#                                                  only, printed, not written to docs/benchmarks
#
# Every start of http-create-conversation asks for the same direct conversation as the same
# user: with the default creation limit (20 an hour) all but the first round would time the 429
# path, which waits about a second for a concurrent creation to land. The limit is raised here.
#
# Besides the plain start, each function is started again per round in three variants, each with
# its own init and first-invoke columns: `TLS_ROOTS=system` (the SDK's default trust store);
# "over TLS" (every AWS endpoint the gateway's IAM proxy over HTTPS, with a certificate made
# here by openssl and trusted as the only root: the handshake every cold start pays on AWS); and
# "Redis without IAM" (the stack's Redis directly, no AUTH: what the IAM token costs).
#
# Bootstraps come from $BENCH_LAMBDA_DIR, by default ${CARGO_TARGET_DIR:-target}/lambda/ (tools/build-release.sh). Exits 1 when a bootstrap misses an aim (init within 2× the
# floor, under 12 MB, peak RSS under 32 MB). Stops everything it started by PID.
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
out=$root/docs/benchmarks
mkdir -p "$out" target/bench/cold-start
[ -x tools/.venv/bin/sam ] || tools/install.sh
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  tools/build-release.sh
fi
cargo build --quiet --profile ci --locked -p local-gateway -p local-invoke
# cargo's layout (<dir>/cold-start-floor) or cargo lambda's (<dir>/cold-start-floor/bootstrap).
floor=$lambda_dir/cold-start-floor
[ -f "$floor/bootstrap" ] && floor=$floor/bootstrap

trap 'stop_gateway; bench_stack_stop' EXIT
bench_stack_start
port_open "$port" && die "port $port is taken: set BENCH_GATEWAY_PORT"
# The HTTPS front's certificate, as an AWS endpoint's is: a leaf for 127.0.0.1 issued by a root
# (made here, valid a day) that the bootstraps trust alone. P-256 keys: rustls prefers ECDSA, which
# AWS's endpoints offer too.
tls_dir=target/bench/cold-start/tls
mkdir -p "$tls_dir"
ec_key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec_key[@]}" -days 1 -subj "/CN=chat benchmark root" \
  -keyout "$tls_dir/root-key.pem" -out "$tls_dir/root.pem" 2>/dev/null
openssl req "${ec_key[@]}" -subj "/CN=127.0.0.1" -keyout "$tls_dir/key.pem" -out "$tls_dir/leaf.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tls_dir/leaf.ext"
openssl x509 -req -in "$tls_dir/leaf.csr" -CA "$tls_dir/root.pem" -CAkey "$tls_dir/root-key.pem" \
  -CAcreateserial -days 1 -extfile "$tls_dir/leaf.ext" -out "$tls_dir/cert.pem" 2>/dev/null
start_gateway "$port" target/bench/cold-start/gateway.log RUST_LOG=warn \
  CHAT_IAM_TLS_CERT="$root/$tls_dir/cert.pem" CHAT_IAM_TLS_KEY="$root/$tls_dir/key.pem" \
  CHAT_IAM_TLS_ROOTS="$root/$tls_dir/root.pem"
trap 'stop_gateway; bench_stack_stop' EXIT

status=0
GATEWAY_PORT=$port AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI=http://127.0.0.1:$port/local RUST_LOG=info \
  target/ci/local-invoke cold-start --bootstraps "$lambda_dir" \
  --floor "$floor" --starts "$starts" --warm "$warm" \
  --env RATE_LIMIT_CREATE_CONVERSATION=100000/3600 \
  --variant "TLS_ROOTS=system:TLS_ROOTS=system" --tls \
  --variant "Redis without IAM:REDIS_URL=$REDIS_URL,-REDIS_IAM_USER,-REDIS_IAM_CACHE" \
  ${BENCH_ONLY:+--only "$BENCH_ONLY"} >target/bench/cold-start/table.md || status=$?
[ "$status" -le 1 ] || die "the benchmark failed (exit $status)"
if [ -n "${BENCH_ONLY:-}" ]; then
  # A look at a few functions: not the results of record.
  cat target/bench/cold-start/table.md
  exit "$status"
fi
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
