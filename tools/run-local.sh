#!/usr/bin/env bash
# Runs the local stack for development and keeps it up until Ctrl-C, then stops everything it
# started. Installs what is missing first (tools/install.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

tools/install.sh
trap 'tools/stack.sh stop' EXIT
tools/stack.sh stop
tools/stack.sh start

cat <<MSG

The local stack is up. Point a shell at it with:

  eval "\$(tools/stack.sh env)"

$(tools/stack.sh env | sed 's/^/  /')

Press Ctrl-C to stop it.
MSG
# `sleep` in the background so that the trap runs as soon as Ctrl-C arrives.
while true; do sleep 3600 & wait $!; done
