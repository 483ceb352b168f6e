#!/usr/bin/env bash
# kinesis-local on 127.0.0.1 only: plain HTTP on $1, TLS on $2 (loopback-only.cjs; kinesis-local
# itself binds 0.0.0.0). Its other settings (SHARD_LIMIT, LOG_LEVEL, …) come from the caller's
# environment. `exec`: the caller's PID is node's.
#
#   tools/emulators/kinesis-local.sh PORT TLS_PORT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pkg=$here/node_modules/kinesis-local
[ -f "$pkg/main.js" ] || { echo "kinesis-local is not installed: run tools/install.sh" >&2; exit 1; }
export KINESIS_MOCK_CERT_PATH=$pkg/server.json KINESIS_MOCK_PLAIN_PORT=$1 KINESIS_MOCK_TLS_PORT=$2
exec node --require "$here/loopback-only.cjs" "$pkg/main.js"
