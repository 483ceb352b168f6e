#!/usr/bin/env bash
# Builds the release bootstrap as it ships, with cargo lambda (from tools/.venv): one binary,
# `chat-lambda`, for every function (it runs the function its `Handler` names,
# docs/decisions/0003-one-binary.md), and the cold-start floor (tools/cold-start-floor).
#   tools/build-release.sh            # x86_64: target/lambda/{chat-lambda,cold-start-floor}/bootstrap
#   tools/build-release.sh --arm64    # arm64 (the template's architecture), zig as cross-linker;
#                                     # needs `rustup target add aarch64-unknown-linux-gnu`
# Then checks the glibc the x86_64 binaries need (tools/check-glibc.sh) and prints their sizes.
# The release profile (Cargo.toml) is opt-level "s", fat LTO, one codegen unit, stripped,
# panic = "abort": one fat-LTO link for every function (docs/benchmarks/build.md has the time).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x tools/.venv/bin/cargo-lambda ] || tools/install.sh
# zig is found only when the venv's python3 is first on PATH.
export PATH="$root/tools/.venv/bin:$PATH"

cargo lambda build --release --locked -p chat-functions "$@"
# The floor on its own, so that it links only what a hello world needs (built with the functions,
# its dependencies would get their features too).
cargo lambda build --release --locked -p cold-start-floor "$@"
binaries=()
for binary in chat-lambda cold-start-floor; do
  binaries+=("${CARGO_TARGET_DIR:-target}/lambda/$binary/bootstrap")
done
if [[ " $* " != *" --arm64 "* ]]; then
  echo "== glibc (Lambda provided.al2023 has 2.34)"
  tools/check-glibc.sh "${binaries[@]}"
fi
echo "== stripped sizes"
for binary in "${binaries[@]}"; do
  printf '%-40s %6d KiB\n' "$binary" $(($(stat -c %s "$binary") / 1024))
done
