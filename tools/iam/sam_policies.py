"""Prints, as JSON, the IAM policies of every function in a SAM template as AWS would deploy them.

    tools/.venv/bin/python tools/iam/sam_policies.py [template.yaml]

The template goes through SAM's own transform (the pinned aws-sam-translator of tools/.venv, run
offline as `sam validate` runs it), so policy templates, managed policies and the policies SAM adds
for event sources and destinations are exactly what CloudFormation would get. AWS managed policies
are expanded from tools/iam/aws-managed-policies.json. Intrinsic functions (Ref, Fn::GetAtt,
Fn::Sub) are left as they are: the local IAM check resolves them against the local stack.

Output: {"functions": {"<binary>": {"logicalId", "role", "statements": [...]}}}, each statement
with "source" (the inline policy's name or the managed policy's ARN).
"""

import json
import os
import pathlib
import sys

from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

HERE = pathlib.Path(__file__).resolve().parent


class BundledPolicies:
    """SAM's own offline map of managed policy names to ARNs (no call to IAM)."""

    def load(self):
        return get_bundled_managed_policy_map("aws", {})


def main(path):
    template = yaml_parse(pathlib.Path(path).read_text())
    binaries = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        # The function's name is its Handler (the one binary runs the function it names).
        binaries[logical_id] = resource["Properties"]["Handler"]
        # The code's location does not change a role; a local path is refused by the transform
        # (sam validate replaces it the same way).
        resource["Properties"]["CodeUri"] = "s3://local/code.zip"
    # The pseudo region only fills ARNs that the local check resolves itself.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    cfn = transform(template, {}, BundledPolicies())
    managed = json.loads((HERE / "aws-managed-policies.json").read_text())
    functions = {}
    for logical_id, binary in sorted(binaries.items()):
        function = cfn["Resources"][logical_id]
        role_ref = function["Properties"]["Role"]
        role_id = role_ref["Fn::GetAtt"][0]
        role = cfn["Resources"][role_id]["Properties"]
        statements = []
        for policy in role.get("Policies", []):
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                statements.append({"source": policy["PolicyName"], **statement})
        for arn in role.get("ManagedPolicyArns", []):
            if arn not in managed:
                sys.exit(f"{logical_id}: managed policy {arn} is not in aws-managed-policies.json")
            for statement in as_list(managed[arn]["Statement"]):
                statements.append({"source": arn, **statement})
        functions[binary] = {"logicalId": logical_id, "role": role_id, "statements": statements}
    json.dump({"functions": functions}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


def as_list(value):
    return value if isinstance(value, list) else [value]


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
