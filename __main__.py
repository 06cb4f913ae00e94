"""llm-platform: an LLM inference platform on EKS, one stack per environment.

config -> network -> cluster -> karpenter (GPU pools) -> GPU enablement -> KubeRay ->
observability -> RayService.
"""

from infra import config

cfg = config.load()
