"""Foundation on AWS: the VPC (network), the EKS cluster and its system nodes (cluster),
Karpenter with its GPU NodePools and its IAM (karpenter, karpenter_iam).

May import: infra.capacity, infra.config and the shared modules at the top of `infra/`
(context, component, helm, iam, labels, versions). Not infra.platform or infra.serving.
"""
