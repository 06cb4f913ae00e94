"""IAM documents shared by the components."""

from __future__ import annotations

from typing import Any


def service_trust_policy(
    service: str, account_id: str | None = None, actions: str | list[str] = "sts:AssumeRole"
) -> dict[str, Any]:
    """Trust for one AWS service principal; with `account_id`, only on this account's behalf
    (`aws:SourceAccount`, against the confused-deputy problem)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": actions,
    }
    if account_id is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}
