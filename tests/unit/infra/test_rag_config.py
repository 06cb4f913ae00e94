"""infra/config/rag.py: the `rag` section's bad input, each error naming the key."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from infra.config.rag import PROFILES, AuroraConfig, StackRagConfig, prod_problems


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
    assert prod_problems(StackRagConfig.model_validate(PROFILES["prod"])) == []


def test_every_profile_is_valid() -> None:
    for env, values in PROFILES.items():
        cfg = StackRagConfig.model_validate(values)
        assert isinstance(cfg.aurora, AuroraConfig), env


# Through the whole stack config: every error carries the key's full path.
RAG_BAD = [
    ("prod", "rag.aurora.readers", 0,
     "rag.aurora.readers: prod needs at least 1 reader (Multi-AZ failover of the database)"),
    ("prod", "rag.aurora.deletionProtection", False,
     "rag.aurora.deletionProtection: must be true in prod"),
    ("dev", "rag.aurora.maxCapacityAcu", 0.5,
     "rag.aurora.maxCapacityAcu: Input should be greater than or equal to 1"),
    ("staging", "rag.aurora.minCapacityAcu", 0.25,
     "rag.aurora: minCapacityAcu must be a multiple of 0.5 ACU"),
    ("staging", "rag.auroa", {}, "rag.auroa: unknown key (did you mean 'aurora'?)"),
    # staging serves RAG: its embedder's dimension must be indexed by the migration Job.
    ("staging", "rag.migration.dimensions", [],
     "rag.migration.dimensions: must list the output dimensions of the embedder 'bge-small-en'"),
    ("dev", "rag.migration.timeoutMinutes", 1,
     "rag.migration.timeoutMinutes: Input should be greater than or equal to 2"),
]


@pytest.mark.parametrize(("stack", "path", "value", "expected"), RAG_BAD,
                         ids=[b[1] for b in RAG_BAD])
def test_bad_rag_key_is_named_by_its_full_path(stack: str, path: str, value: object,
                                               expected: str) -> None:
    import copy

    from infra.config import ConfigError, validate
    from tests.unit.infra.test_config import _set, stack_values

    values, secrets = stack_values(stack)
    values = copy.deepcopy(values)
    _set(values, path, value)
    with pytest.raises(ConfigError) as exc:
        validate(values, secrets)
    assert any(f"llm-platform:{expected}" in p for p in exc.value.problems), exc.value.problems


def test_prod_reports_every_database_problem_at_once() -> None:
    import copy

    from infra.config import ConfigError, validate
    from tests.unit.infra.test_config import stack_values

    values, secrets = stack_values("prod")
    values = copy.deepcopy(values)
    # ... and the embedder's dimension dropped from the migration with them
    values["rag"] = {"aurora": {"readers": 0, "deletionProtection": False,
                                "minCapacityAcu": 0, "secondsUntilAutoPause": 300}}
    with pytest.raises(ConfigError) as exc:
        validate(values, secrets)
    rag = sorted(p.split(":")[1] for p in exc.value.problems if ":rag." in p)
    assert rag == ["rag.aurora.deletionProtection", "rag.aurora.minCapacityAcu",
                   "rag.aurora.readers", "rag.migration.dimensions"]


def test_migrate_on_start_is_the_platforms_on_eks() -> None:
    """The migration Job owns the schema on EKS; the gateway's role (rag_app) runs no DDL, so
    an explicit migrateOnStart: true is refused at its key, and the platform sets it false."""
    from infra.config import ConfigError, own_keys, validate
    from infra.serving.vector_db import with_migration_job
    from tools.render import stack_config

    values, secrets = stack_config("staging")
    values, secret_keys = own_keys(values, set(secrets))
    cfg = validate(values, secret_keys)
    assert cfg.serving.rag.enabled and cfg.serving.rag.database.migrate_on_start
    assert with_migration_job(cfg).serving.rag.database.migrate_on_start is False
    serving = values["serving"]
    serving = json.loads(serving) if isinstance(serving, str) else serving
    serving["rag"]["database"] = {"migrateOnStart": True}
    values = {**values, "serving": serving}
    with pytest.raises(ConfigError, match=r"serving\.rag\.database\.migrateOnStart: .*is set by "
                                          r"the platform on EKS"):
        validate(values, secret_keys)
