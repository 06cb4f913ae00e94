"""costCeilingPerHour: the config check prices the GPU pools in the stack's region and refuses
a stack whose worst case exceeds its ceiling, naming the numbers and the key."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from infra.capacity.catalog import hourly_price
from infra.capacity.cost import DEFAULT_CEILING_USD_PER_HOUR
from infra.config import ConfigError, own_keys, validate
from infra.config.cost_ceiling import min_replica_costs, pool_costs, replica_usd_per_hour
from infra.config.profiles import PROFILES
from tools.render import ROOT, stack_config


def stack_values(stack: str) -> tuple[dict[str, Any], set[str], str]:
    values, secrets = stack_config(stack)
    region = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]["aws:region"]
    own, own_secrets = own_keys(values, set(secrets))
    return copy.deepcopy(own), own_secrets, region


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_stack_fits_its_profile_ceiling(stack: str) -> None:
    values, secrets, region = stack_values(stack)
    cfg = validate(values, secrets, region=region)
    assert cfg.cost_ceiling_per_hour == DEFAULT_CEILING_USD_PER_HOUR[stack]
    assert PROFILES[stack]["costCeilingPerHour"] == DEFAULT_CEILING_USD_PER_HOUR[stack]
    assert sum(p.usd_per_hour for p in pool_costs(cfg, region)) <= cfg.cost_ceiling_per_hour


def test_a_fork_that_raises_a_pool_limit_fails_with_the_numbers_and_the_key() -> None:
    values, secrets, region = stack_values("prod")
    values["gpuNodePools"] = copy.deepcopy(PROFILES["prod"]["gpuNodePools"])
    values["gpuNodePools"][0]["limits"] = {"gpus": 64}  # g6e: 64 x g6e.16xlarge
    with pytest.raises(ConfigError) as exc:
        validate(values, secrets, region=region)
    (problem,) = exc.value.problems
    total = re.search(r"can cost ([0-9.]+) USD/h at their limits in us-west-2", problem)
    parts = re.findall(r"(?:\(|; )([a-z0-9-]+) ([0-9.]+) USD/h", problem)
    assert problem.startswith("llm-platform:costCeilingPerHour: ") and total and parts
    assert ("g6e", "484.94") in parts  # 64 x g6e.16xlarge
    assert float(total.group(1)) == pytest.approx(sum(float(v) for _, v in parts), abs=0.02)
    assert "g6e 484.94 USD/h (64 x g6e.16xlarge)" in problem
    assert "above costCeilingPerHour 400 USD/h" in problem
    # Raising the ceiling in the stack file is the reviewed way out.
    values["costCeilingPerHour"] = 650
    assert validate(values, secrets, region=region).cost_ceiling_per_hour == 650


def test_a_pool_cpu_limit_lowers_the_worst_case() -> None:
    values, secrets, region = stack_values("prod")
    values["gpuNodePools"] = copy.deepcopy(PROFILES["prod"]["gpuNodePools"])
    values["gpuNodePools"][0]["limits"] = {"gpus": 64, "cpu": 256}
    cfg = validate(values, secrets, region=region)
    g6e = pool_costs(cfg, region)[0]
    assert g6e.pool == "g6e" and g6e.usd_per_hour < 200


def test_an_unpriced_region_is_a_config_error_on_aws_region() -> None:
    values, secrets, _ = stack_values("prod")
    with pytest.raises(ConfigError) as exc:
        validate(values, secrets, region="eu-north-1")
    (problem,) = exc.value.problems
    assert problem.startswith("aws:region: no on-demand price table for region 'eu-north-1'")


@pytest.mark.parametrize("value", [0, -5, "lots"])
def test_bad_ceiling_values_are_refused(value: Any) -> None:
    values, secrets, region = stack_values("dev")
    values["costCeilingPerHour"] = value
    with pytest.raises(ConfigError, match=r"llm-platform:costCeilingPerHour: "):
        validate(values, secrets, region=region)


def test_min_replicas_are_priced_on_the_pool_of_their_accelerator() -> None:
    values, secrets, region = stack_values("prod")
    costs = {m: (p, c.usd_per_hour) for m, p, c in min_replica_costs(
        validate(values, secrets, region=region), region)}
    assert costs["llama-3.1-8b-instruct"] == ("g6e", pytest.approx(2 * 1.861, abs=1e-3))
    assert costs["llama-3.1-70b-instruct"] == ("p4d", pytest.approx(21.957642, abs=1e-3))


def test_replica_prices_for_usd_per_1m_tokens_come_from_the_pool_and_the_catalog() -> None:
    """The constants of the cost recording rules (dashboards/rules.py): one replica's share of
    the smallest instance of its pool that holds it, at the catalog's price."""
    values, secrets, region = stack_values("staging")
    prices = replica_usd_per_hour(validate(values, secrets, region=region), region)
    # 1 L40S: g6e.xlarge (1 GPU); 1 A10G: g5.xlarge (1 GPU), us-west-2 on-demand.
    assert prices == {"llama-3.1-8b-instruct": hourly_price("g6e.xlarge", region),
                      "llama-3.1-8b-instruct-v2": hourly_price("g6e.xlarge", region),
                      "bge-small-en": hourly_price("g5.xlarge", region)}
    assert prices["bge-small-en"] == 1.006
    values, secrets, region = stack_values("prod")
    prod = replica_usd_per_hour(validate(values, secrets, region=region), region)
    assert prod["llama-3.1-70b-instruct"] == 21.957642  # 8 GPUs: a whole p4d.24xlarge
