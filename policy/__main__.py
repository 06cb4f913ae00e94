"""Entry point CrossGuard runs (`pulumi preview --policy-pack policy`): the adapter only."""

import sys
from pathlib import Path

# The repo root: the rules (policy.*) and the price table they share with the program (infra.*).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policy.adapter import NAME, policies

PolicyPack(name=NAME, policies=policies())
