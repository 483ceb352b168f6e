#!/usr/bin/env bash
# Builds every function's release bootstrap as it ships, with cargo lambda (from tools/.venv):
#   tools/build-release.sh            # x86_64: target/lambda/<function>/bootstrap
#   tools/build-release.sh --arm64    # arm64 (the template's architecture), zig as cross-linker;
#                                     # needs `rustup target add aarch64-unknown-linux-gnu`
# Then checks the glibc the x86_64 binaries need (tools/check-glibc.sh) and prints their sizes.
# The release profile (Cargo.toml) is opt-level "s", fat LTO, one codegen unit, stripped,
# panic = "abort": on two cores the first build takes about half an hour.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x tools/.venv/bin/cargo-lambda ] || tools/install.sh
# zig is found only when the venv's python3 is first on PATH.
export PATH="$root/tools/.venv/bin:$PATH"

packages=()
for dir in functions/*/; do
  packages+=(-p "$(basename "$dir")")
done
cargo lambda build --release "${packages[@]}" "$@"

binaries=()
for dir in functions/*/; do
  binaries+=("${CARGO_TARGET_DIR:-target}/lambda/$(basename "$dir")/bootstrap")
done
if [[ " $* " != *" --arm64 "* ]]; then
  echo "== glibc (Lambda provided.al2023 has 2.34)"
  tools/check-glibc.sh "${binaries[@]}"
fi
echo "== stripped sizes"
for binary in "${binaries[@]}"; do
  printf '%-40s %6d KiB\n' "$(basename "$(dirname "$binary")")" $(($(stat -c %s "$binary") / 1024))
done
