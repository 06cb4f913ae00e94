"""Shared inputs and checks for the unit tests of the infra spec builders."""

from __future__ import annotations

import json
from typing import Any

from parliament import analyze_policy_string, enhance_finding

ACCOUNT = "123456789012"
CLUSTER = "llm-platform-test"
QUEUE_ARN = f"arn:aws:sqs:us-west-2:{ACCOUNT}:{CLUSTER}"
SEVERITY = {"INFO": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}


def parliament_problems(doc: dict[str, Any], exceptions: dict[str, set[str]]) -> list[str]:
    """Findings above LOW, statement by statement, minus the reasoned exceptions by Sid."""
    out = []
    for st in doc["Statement"]:
        single = json.dumps({"Version": "2012-10-17", "Statement": [st]})
        for f in analyze_policy_string(single).findings:
            enhance_finding(f)
            if SEVERITY.get(f.severity, 4) <= SEVERITY["LOW"]:
                continue
            if f.issue in exceptions.get(st.get("Sid", ""), set()):
                continue
            out.append(f"{st.get('Sid')}: {f.issue} {f.severity} {f.detail}")
    return out
