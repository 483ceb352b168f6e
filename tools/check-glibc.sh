#!/usr/bin/env bash
# Fails when a native bootstrap needs a glibc newer than Lambda's provided.al2023 has (2.34).
#   tools/check-glibc.sh <binary>...
# Prints each binary's newest GLIBC_ symbol version. Static or non-glibc binaries pass.
set -euo pipefail
max=${LAMBDA_GLIBC:-2.34}
[ $# -gt 0 ] || { echo "usage: tools/check-glibc.sh <binary>..." >&2; exit 2; }
command -v objdump >/dev/null || { echo "objdump not found (Debian package binutils)" >&2; exit 2; }
bad=0
for binary in "$@"; do
  needed=$(objdump -T "$binary" 2>/dev/null | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/GLIBC_//' | sort -uV | tail -n1)
  if [ -z "$needed" ]; then
    printf '%-48s no glibc symbols\n' "$binary"
  elif [ "$(printf '%s\n%s\n' "$needed" "$max" | sort -V | tail -n1)" != "$max" ]; then
    printf '%-40s needs glibc %s > %s: it will not start on provided.al2023\n' "$binary" "$needed" "$max" >&2
    bad=1
  else
    printf '%-48s glibc %s\n' "$binary" "$needed"
  fi
done
exit $bad
