# Sourced by the benchmark scripts (tools/bench-*.sh). They define `log` and `die` first.
#
#   bench_stack_start         starts a local stack of the benchmarks' own (ports BENCH_DYNAMODB_PORT,
#                             BENCH_KINESIS_PORT, BENCH_REDIS_PORT: 8300, 4868, 6690; state in
#                             BENCH_STACK_DIR, .local-stack/bench) and exports its environment;
#                             bench_stack_stop stops it
#   bench_venv                tools/.bench-venv with tools/bench/requirements.txt (matplotlib)
#   machine_facts             the machine and commit, as a Markdown paragraph for the results

bench_stack_stop() { tools/stack.sh stop || true; }

bench_stack_start() {
  export CHAT_STACK_DIR=${BENCH_STACK_DIR:-$root/.local-stack/bench}
  export CHAT_DYNAMODB_PORT=${BENCH_DYNAMODB_PORT:-8300}
  export CHAT_KINESIS_PORT=${BENCH_KINESIS_PORT:-4868}
  export CHAT_REDIS_PORT=${BENCH_REDIS_PORT:-6690}
  tools/stack.sh stop >/dev/null 2>&1 || true # whatever an interrupted run left behind
  tools/stack.sh start
  eval "$(tools/stack.sh env)"
}

bench_venv() {
  local venv=$root/tools/.bench-venv
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  if ! cmp -s tools/bench/requirements.txt "$venv/.installed-requirements" 2>/dev/null; then
    log "pip install -r tools/bench/requirements.txt"
    "$venv/bin/pip" install -q --disable-pip-version-check -r tools/bench/requirements.txt
    cp tools/bench/requirements.txt "$venv/.installed-requirements"
  fi
}

machine_facts() {
  local cpu
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  printf 'Machine: %s, %s cores, %s GiB RAM, %s. Commit %s%s, %s UTC.\n' \
    "$cpu" "$(nproc)" "$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)" \
    "$(. /etc/os-release && echo "$PRETTY_NAME")" "$(git rev-parse --short HEAD)" \
    "$(git diff --quiet HEAD -- . ':!docs/benchmarks' ':!BENCHMARKS.md' || echo ' (with uncommitted changes)')" \
    "$(date -u '+%Y-%m-%d %H:%M')"
}
