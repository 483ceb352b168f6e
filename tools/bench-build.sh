#!/usr/bin/env bash
# The build benchmark: a clean release build of every function (the one binary, `chat-lambda`, as
# tools/build-release.sh and CI build it: cargo lambda, x86_64) against a clean release build of the
# hello-world floor (tools/cold-start-floor: lambda_runtime and tokio only) in the same run, each in a target
# directory of its own, with the profile that ships (opt-level "s", fat LTO, one codegen unit,
# panic = "abort"). Results: docs/benchmarks/build.md. Exits 1 when the functions' build misses
# its aim: at most 10 minutes, so that CI (tools/test.sh) can afford to test what ships.
#
#   tools/bench-build.sh
#
# Downloads nothing it has not already fetched (`cargo fetch` first); removes its target
# directories (target/bench/build) at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[bench-build] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib/bench.sh
. tools/lib/bench.sh

aim_seconds=600
[ -x tools/.venv/bin/cargo-lambda ] || tools/install.sh
# zig is found only when the venv's python3 is first on PATH.
export PATH="$root/tools/.venv/bin:$PATH"
work=$root/target/bench/build
out=$root/docs/benchmarks
rm -rf "$work"
mkdir -p "$work" "$out"
trap 'rm -rf "$work"' EXIT
cargo fetch --locked

# Seconds a clean `cargo lambda build --release` of the packages takes, in a target directory of
# its own.
clean_build() {
  local name=$1
  shift
  local start end
  start=$(date +%s.%N)
  CARGO_TARGET_DIR="$work/$name" cargo lambda build --release --locked --offline "$@" >"$work/$name.log" 2>&1 ||
    { cat "$work/$name.log" >&2; die "the $name build failed"; }
  end=$(date +%s.%N)
  python3 -c "print($end - $start)"
}

log "clean release build of the floor"
floor=$(clean_build floor -p cold-start-floor)
floor_size=$(stat -c %s "$work/floor/lambda/cold-start-floor/bootstrap")
log "clean release build of every function"
functions=$(clean_build functions -p chat-functions)
functions_size=$(stat -c %s "$work/functions/lambda/chat-lambda/bootstrap")

status=0
verdict=met
if python3 -c "import sys; sys.exit(0 if $functions > $aim_seconds else 1)"; then verdict=missed; status=1; fi
{
  echo "Command: \`tools/bench-build.sh\`"
  echo
  machine_facts
  echo
  echo "Clean release builds (x86_64, \`cargo lambda build --release\`, zig as the linker; profile \`release\`: opt-level s, fat LTO,"
  echo "one codegen unit, stripped, panic = abort), each in an empty target directory, one after the other."
  echo
  echo "| build | wall time (s) | ÷ floor | stripped size (MB) | aim |"
  echo "|---|---:|---:|---:|---|"
  python3 - "$floor" "$floor_size" "$functions" "$functions_size" "$verdict" "$aim_seconds" <<'PY'
import sys
floor, floor_size, functions, functions_size = map(float, sys.argv[1:5])
verdict, aim = sys.argv[5], int(sys.argv[6])
print(f"| hello world (floor), `-p cold-start-floor` | {floor:.0f} | 1.00 | {floor_size / 1e6:.2f} | – |")
print(f"| every function (`chat-lambda`), `-p chat-functions` | {functions:.0f} | {functions / floor:.2f} "
      f"| {functions_size / 1e6:.2f} | {verdict} (≤ {aim} s) |")
PY
} >"$out/build.md"
cat "$out/build.md"
python3 tools/bench/report.py
exit "$status"
