"""Every bench design writes a serving config the app accepts (a design that narrows the
models must also narrow what refers to them: `gateway-throughput-one-engine` once failed to
start because the local alias kept its rollback rule with one target left)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serve_app.config import ServingConfig
from tools.bench.designs import DESIGNS, serving_file


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_every_design_is_a_valid_serving_config(name: str, tmp_path: Path) -> None:
    design = DESIGNS[name]
    cfg = ServingConfig.model_validate(json.loads(serving_file(design, tmp_path / "s.json")
                                                  .read_text()))
    if design.only:
        assert {m.id for m in cfg.models} == set(design.only)
        assert all(t.model in design.only for a in cfg.aliases for t in a.targets)
