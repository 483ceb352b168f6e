#!/usr/bin/env bash
# The cost benchmark, one command: starts a local stack of its own and runs the cost tests
# (tests/integration/cost.rs): the first calls every route once against a table of its own and
# counts DynamoDB calls and capacity, stream and Kinesis records, Redis round trips and
# @connections posts, then prices them; the second counts and prices a message into groups of 2,
# 256 and 1,024 and a rename of a member of 500 conversations (about 3 minutes). Results, both
# tables: docs/benchmarks/cost.md.
#
#   tools/bench-cost.sh
#
# Stops the stack it started by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[bench-cost] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib/bench.sh
. tools/lib/bench.sh

out=$root/docs/benchmarks
mkdir -p "$out" target/bench/cost
[ -x tools/.venv/bin/sam ] || tools/install.sh
cargo test --quiet --profile ci --locked -p chat-integration-tests --no-run

trap bench_stack_stop EXIT
bench_stack_start
# One after the other, the routes first: the second test leaves DynamoDB Local holding some
# 200,000 items and stream records, and opens 1,024 sockets.
for test in every_route_priced_against_the_least_it_could_cost \
  a_message_by_group_size_and_a_rename_by_conversations_priced; do
  CHAT_COST_TABLE=$root/target/bench/cost/table.md \
    CHAT_COST_GROUPS_TABLE=$root/target/bench/cost/groups.md \
    cargo test --quiet --profile ci --locked -p chat-integration-tests --test integration -- \
    --exact "cost::$test" >"target/bench/cost/$test.log" 2>&1 \
    || { cat "target/bench/cost/$test.log" >&2; die "the cost test $test failed"; }
done
{
  echo "Command: \`tools/bench-cost.sh\`"
  echo
  machine_facts
  echo
  cat target/bench/cost/table.md
  echo
  cat target/bench/cost/groups.md
} >"$out/cost.md"
cat "$out/cost.md"
python3 tools/bench/report.py
