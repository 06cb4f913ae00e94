"""infra/rag_config.py: the `rag` section's bad input, each error naming the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.rag_config import PROFILE_DEFAULTS, AuroraConfig, StackRagConfig, prod_problems


def _errors(values: dict) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        StackRagConfig.model_validate(values)
    return [".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.value.errors()]


@pytest.mark.parametrize(("values", "path", "text"), [
    ({"aurora": {"minCapacityAcu": 0.3}}, "aurora", "multiple of 0.5"),
    ({"aurora": {"minCapacityAcu": 16, "maxCapacityAcu": 8}}, "aurora", "must be <="),
    ({"aurora": {"minCapacityAcu": 0}}, "aurora", "secondsUntilAutoPause"),
    ({"aurora": {"secondsUntilAutoPause": 600}}, "aurora", "only used with minCapacityAcu 0"),
    ({"aurora": {"maxCapacityAcu": 512}}, "aurora.maxCapacityAcu", "less than or equal"),
    ({"aurora": {"backupRetentionDays": 0}}, "aurora.backupRetentionDays", "greater than"),
    ({"aurora": {"masterUsername": "Admin!"}}, "aurora.masterUsername", "pattern"),
    ({"aurora": {"preferredBackupWindow": "25:00-26:00"}}, "aurora.preferredBackupWindow",
     "pattern"),
    ({"aurora": {"readers": 16}}, "aurora.readers", "less than or equal"),
    ({"aurora": {"nope": 1}}, "aurora.nope", "Extra inputs"),
    ({"migration": {"dimensions": [4096]}}, "migration", "1..2000"),
])
def test_bad_input_names_the_key(values: dict, path: str, text: str) -> None:
    errors = _errors(values)
    assert any(e.startswith(f"{path}:") and text in e for e in errors), errors


def test_prod_needs_a_reader_deletion_protection_and_no_pause() -> None:
    bad = StackRagConfig.model_validate(
        {"aurora": {"minCapacityAcu": 0, "secondsUntilAutoPause": 300}})
    paths = {p for p, _, _ in prod_problems(bad)}
    assert paths == {("aurora", "readers"), ("aurora", "deletionProtection"),
                     ("aurora", "minCapacityAcu")}
    assert prod_problems(StackRagConfig.model_validate(PROFILE_DEFAULTS["prod"])) == []


def test_every_profile_is_valid() -> None:
    for env, values in PROFILE_DEFAULTS.items():
        cfg = StackRagConfig.model_validate(values)
        assert isinstance(cfg.aurora, AuroraConfig), env
