#!/usr/bin/env bash
# Runs every check and every test from a clean checkout: installs what is missing (tools/install.sh),
# checks formatting, lints, validates template.yaml (cfn-lint, sam validate, checkov) and
# openapi.yaml, starts a private local stack on its own ports, builds the release bootstrap and
# checks its glibc, runs the whole test suite against the stack (the runtime tests run the release
# bootstrap under AWS's emulator), runs the smoke test against a local gateway, fuzzes the HTTP API with
# schemathesis, runs the web client in Chromium and a short load run, and stops what it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

step "install"
tools/install.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --profile ci --workspace --all-targets --locked -- -D warnings

step "template and API description"
export SAM_CLI_TELEMETRY=0
tools/.venv/bin/cfn-lint template.yaml
tools/.venv/bin/sam validate --lint --region us-east-1 --template-file template.yaml
# The security lint: any failed check fails the run. Each check the template does not pass is
# skipped on its resource (Metadata.checkov.skip) with the reason; --skip-download keeps it offline.
tools/.checkov-venv/bin/checkov --file template.yaml --framework cloudformation --skip-download \
  --quiet --compact
tools/.venv/bin/openapi-spec-validator openapi.yaml
node tools/spec-check/check-asyncapi.mjs asyncapi.yaml

# A stack of its own, beside any `tools/run-local.sh` that may be running.
export CHAT_STACK_DIR=$root/.local-stack/test
export CHAT_DYNAMODB_PORT=${CHAT_TEST_DYNAMODB_PORT:-8100}
export CHAT_KINESIS_PORT=${CHAT_TEST_KINESIS_PORT:-4668}
export CHAT_REDIS_PORT=${CHAT_TEST_REDIS_PORT:-6490}
export TABLE_NAME=chat-test EVENT_STREAM_NAME=chat-events-test
export CARGO_PROFILE=ci

tools/stack.sh stop # whatever an interrupted run left behind
trap 'tools/stack.sh stop' EXIT
step "local stack"
tools/stack.sh start
eval "$(tools/stack.sh env)"

# The bootstrap as it ships, for the runtime tests (tests/integration/runtime.rs runs each function
# under AWS's Runtime Interface Emulator): the one binary of every function, `chat-lambda`, built
# as `sam build` builds it (cargo lambda, the release profile: opt-level "s", fat LTO,
# panic = "abort"), for x86_64, and the glibc it needs.
step "the release bootstrap and its glibc"
tools/build-release.sh
export CHAT_BOOTSTRAP_DIR=$root/target/lambda
# One TLS stack in what ships: rustls on aws-lc-rs (the SDK's), no ring, no OpenSSL.
if cargo tree --locked -e normal --prefix none -p chat-functions |
   grep -E '^(ring|openssl|openssl-sys|native-tls) '; then
  echo "a function links a second TLS or crypto stack (above)" >&2
  exit 1
fi
if LAMBDA_GLIBC=2.17 tools/check-glibc.sh target/lambda/chat-lambda/bootstrap >/dev/null 2>&1; then
  echo "tools/check-glibc.sh passed a binary that needs a newer glibc than it allows" >&2
  exit 1
fi

# Every function's AWS calls go through the gateway's IAM proxy (tools/local-iam), held to its role;
# what each asked for is recorded, and every grant must be used or have its reason written.
step "cargo nextest run"
rm -rf target/iam-usage
CHAT_IAM_USAGE_DIR=$root/target/iam-usage cargo nextest run --cargo-profile ci --workspace --locked

step "IAM: every grant used in the suite, or its reason written (docs/iam.md)"
cargo build --profile ci --locked -p local-iam
target/ci/local-iam report target/iam-usage --check >target/iam-report.md

# Nothing may depend on today's date: the same suite with every process's application clock a
# year ahead (CHAT_CLOCK_OFFSET reaches the tests, the in-process gateways and the bootstraps under
# the emulator; SDK signing and the emulators keep real time).
step "cargo nextest run, the application clock a year ahead"
CHAT_CLOCK_OFFSET=365d cargo nextest run --cargo-profile ci --workspace --locked

# The smoke test a deployed stack gets (docs/deploy.md), here against a local gateway of its own: it
# must be known to work before anyone runs it against AWS.
step "smoke test (tools/smoke.sh --local)"
tools/smoke.sh --local

# After the tests: the fuzzer's fixtures and thousands of cases would only slow the emulators down
# for them.
step "schemathesis against the local gateway"
tools/fuzz-api.sh

# The web client in headless Chromium, against a gateway of its own (port 3200, second origin 3201).
step "web client end to end (headless Chromium)"
tools/web-e2e.sh

# Real-time delivery under load, short: 20 users with 2 sockets each send for 10 s at 5 sends/s
# (the rate this two-core stack sustains: at 10 it queues for seconds and refuses sends); every push
# must arrive once (no raw miss, no duplicate; reorders are allowed), no send may be refused, and
# every socket's timeline must end equal to the server's (0 lost). On a stack of its own; the full
# run is tools/bench-load.sh (BENCHMARKS.md).
step "load and delivery (a short tools/bench-load.sh)"
BENCH_RESULTS_DIR=$root/target/bench/ci BENCH_NO_PLOT=1 BENCH_GATEWAY_PORT=3400 \
  BENCH_STACK_DIR=$root/.local-stack/test-load BENCH_DYNAMODB_PORT=8400 BENCH_KINESIS_PORT=4968 \
  BENCH_REDIS_PORT=6790 tools/bench-load.sh --users 20 --groups 10,5,2 --rate 5 --seconds 10 --grace 10
