#!/usr/bin/env bash
# Runs every check and every test from a clean checkout: installs what is missing (tools/install.sh),
# checks formatting, lints, validates template.yaml and openapi.yaml, starts a private local stack
# on its own ports, runs the whole test suite against it, and stops what it started.
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
tools/.venv/bin/openapi-spec-validator openapi.yaml

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

step "cargo nextest run"
cargo nextest run --cargo-profile ci --workspace --locked
