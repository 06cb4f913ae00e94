"""Every key of the stack config is documented: docs/config.md is generated from the field
descriptions, so a field without one is a blank line in the reference. Walks the whole model
(serving included), so that fields added later are covered too."""

from __future__ import annotations

import typing
from collections.abc import Iterator

from pydantic import BaseModel

from infra.config import StackConfig


def _models_in(annotation: typing.Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str | None]]:
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        yield path, field.description
        for inner in _models_in(field.annotation):
            yield from _fields(inner, f"{path}.")


def test_the_walk_reaches_nested_and_listed_models() -> None:
    paths = {p for p, _ in _fields(StackConfig)}
    assert {"network.vpcCidr", "gpuNodePools.limits.gpus", "serving.models.autoscaling.minReplicas",
            "serving.aliases.targets.weight", "cluster.addonVersions.kubeProxy"} <= paths


def test_every_config_field_has_a_description() -> None:
    missing = [path for path, doc in _fields(StackConfig) if not (doc or "").strip()]
    assert missing == [], f"no description= (blank in docs/config.md): {missing}"
