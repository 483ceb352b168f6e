#!/usr/bin/env bash
# A code-only update of functions the stack created: builds each function's release bootstrap for
# arm64 with cargo lambda and uploads it to the function the stack made (found by the stack's
# resources, by logical id), without touching its configuration: no role, environment, memory or
# timeout flags are passed, and cargo lambda then updates only the code of an existing function.
# (Given --env-var, cargo lambda would replace the whole environment; given a name no function has,
# it would create a new function that nothing invokes.)
#
#   tools/deploy-code.sh --stack serverless-chat [--region R] [--dry-run] LOGICAL_ID...
#   tools/deploy-code.sh --stack serverless-chat HttpSendMessageFunction WsSendMessageFunction
#
# CloudFormation does not know of the new code: the next `sam deploy` puts its own build back.
# `sam sync --code --stack-name S --resource-id LOGICAL_ID` does the same job through SAM
# (and `sam sync --watch` on every save); see docs/deploy.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[deploy-code] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

stack= region= dry_run=0 ids=()
while [ $# -gt 0 ]; do
  case $1 in
    --stack) stack=$2; shift 2 ;;
    --region) region=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -*) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) ids+=("$1"); shift ;;
  esac
done
[ -n "$stack" ] && [ ${#ids[@]} -gt 0 ] || die "usage: tools/deploy-code.sh --stack NAME LOGICAL_ID..."
export PATH=$root/tools/.venv/bin:$PATH
command -v sam >/dev/null || die "the SAM CLI is not installed: run tools/install.sh"

resources=$(sam list resources --stack-name "$stack" --output json ${region:+--region "$region"})
for id in "${ids[@]}"; do
  # The function the stack made for this logical id. template.yaml names every function
  # <stack>-<package>, so its package (the binary) is the rest of the name.
  name=$(python3 -c '
import json, sys
found = [r["PhysicalResourceId"] for r in json.load(sys.stdin) if r["LogicalResourceId"] == sys.argv[1]]
print(found[0] if found else "")' "$id" <<<"$resources")
  [ -n "$name" ] || die "$stack has no resource $id"
  binary=${name#"$stack"-}
  [ -f "functions/$binary/Cargo.toml" ] || die "$id is $name, which is no function of functions/"
  log "$id: $name (package $binary)"
  build=(cargo lambda build --release --arm64 -p "$binary")
  deploy=(cargo lambda deploy --binary-name "$binary" ${region:+--region "$region"} "$name")
  if [ "$dry_run" = 1 ]; then
    echo "${build[*]}"
    echo "${deploy[*]}"
  else
    "${build[@]}"
    "${deploy[@]}"
  fi
done
