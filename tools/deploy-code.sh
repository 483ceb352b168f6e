#!/usr/bin/env bash
# A code-only update of functions the stack created: builds the release bootstrap (`chat-lambda`,
# one binary for every function) for arm64 with cargo lambda and uploads it to each function the
# stack made (found by the stack's
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
build=(cargo lambda build --release --arm64 --locked -p chat-functions)
if [ "$dry_run" = 1 ]; then echo "${build[*]}"; else "${build[@]}"; fi
for id in "${ids[@]}"; do
  # The function the stack made for this logical id. template.yaml names every function
  # <stack>-<handler>; its Handler (which the binary reads as _HANDLER) is not changed.
  name=$(python3 -c '
import json, sys
found = [r["PhysicalResourceId"] for r in json.load(sys.stdin) if r["LogicalResourceId"] == sys.argv[1]]
print(found[0] if found else "")' "$id" <<<"$resources")
  [ -n "$name" ] || die "$stack has no resource $id"
  handler=${name#"$stack"-}
  grep -qx "      Handler: $handler" template.yaml || die "$id is $name, which is no function of template.yaml"
  log "$id: $name (handler $handler)"
  deploy=(cargo lambda deploy --binary-name chat-lambda ${region:+--region "$region"} "$name")
  if [ "$dry_run" = 1 ]; then echo "${deploy[*]}"; else "${deploy[@]}"; fi
done
