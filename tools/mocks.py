"""Pulumi SDK mocks for the offline render: no CLI, no credentials, no network.

Every resource is recorded with its inputs and options. Values that only a cloud would know
(ids, ARNs, endpoints) come back as readable placeholders such as `<vpc-id>`. This is the one
place that relies on private SDK names (resource references for pulumi-eks' multi-language
component), so that nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs
from pulumi.runtime.sync_await import _sync_await

ACCOUNT = "123456789012"
REGION = "us-west-2"
ZONES = ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d", "us-west-2e", "us-west-2f"]
SECRET = "[secret]"


@dataclass
class Resource:
    """One registered resource, as the engine would have seen it."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    protect: bool = False
    depends_on: list[str] = field(default_factory=list)
    provider: str = ""
    retain_on_delete: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    aliases: list[dict[str, Any]] = field(default_factory=list)  # e.g. [{"type": old type}]
    # Which input carried which dependency (Pulumi derives these from Output inputs); every URN
    # here is also in `depends_on`, which adds the explicit `depends_on` option.
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    # A multi-language component (pulumi-eks): it registers only when all its children exist.
    remote: bool = False


def placeholder(name: str, what: str) -> str:
    return f"<{name}-{what}>"


def _arn(typ: str, name: str) -> str:
    service = typ.split(":")[1].split("/")[0]
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"


class PlatformMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes with inputs plus placeholders."""

    def __init__(self) -> None:
        self.monitor: RecordingMonitor | None = None

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        rid = placeholder(args.name, "id")
        if args.typ.startswith("aws:"):
            state.setdefault("arn", _arn(args.typ, args.name))
            state.setdefault("name", args.inputs.get("name", args.name))
        if args.typ == "eks:index:Cluster":
            state.update(self._eks_cluster_outputs(args))
        if args.typ == "aws:eks/cluster:Cluster":
            state.update(_eks_cluster_state(args.name))
        if args.typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            state.setdefault("primaryEndpointAddress", placeholder(args.name, "primary-endpoint"))
        if args.typ == "aws:rds/cluster:Cluster":
            # RDS makes the master secret itself (manageMasterUserPassword) and reports it here.
            state.setdefault("endpoint", placeholder(args.name, "endpoint"))
            state.setdefault("readerEndpoint", placeholder(args.name, "reader-endpoint"))
            # The id IAM database auth names (arn:aws:rds-db:...:dbuser:<this>/<user>).
            state.setdefault("clusterResourceId", "cluster-MOCKRESOURCEID0000000000")
            state.setdefault("masterUserSecrets", [{
                "secretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!{args.name}",
                "kmsKeyId": args.inputs.get("masterUserSecretKmsKeyId", ""),
                "secretStatus": "active",
            }])
        if args.typ == "random:index/randomPassword:RandomPassword":
            state.setdefault("result", placeholder(args.name, "generated"))  # a secret output
        return rid, state

    def _eks_cluster_outputs(self, args: MockResourceArgs) -> dict[str, Any]:
        """pulumi-eks is a remote component: its children are not run under mocks, so the
        `eksCluster` output is a resource reference to a child registered here by hand."""
        assert self.monitor is not None
        stack, project = pulumi.get_stack(), pulumi.get_project()
        child_type = "aws:eks/cluster:Cluster"
        qualified = f"eks:index:Cluster${child_type}"
        urn = f"urn:pulumi:{stack}::{project}::{qualified}::{args.name}-eksCluster"
        cid = placeholder(args.name, "eks-cluster-id")
        state = _eks_cluster_state(args.name, args.inputs.get("name"))
        self.monitor.resources[urn] = MockMonitor.ResourceRegistration(urn, cid, state)
        # The dependency graph needs this node: resources that use `eks_cluster.name` depend
        # on it. Its parent (the component's URN) is set once the component's registration
        # returns, in RecordingMonitor.RegisterResource.
        self.monitor.children.append(
            Resource(type=child_type, name=f"{args.name}-eksCluster", urn=urn, parent="",
                     custom=True, inputs=plain(state))
        )
        ref = {rpc._special_sig_key: rpc._special_resource_sig, "urn": urn, "id": cid}
        return {
            "kubeconfig": {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": []},
            "kubeconfigJson": '{"apiVersion": "v1", "kind": "Config"}',
            "eksCluster": ref,
            "clusterSecurityGroupId": placeholder(args.name, "cluster-sg"),
            "nodeSecurityGroupId": placeholder(args.name, "node-sg"),
            "oidcProviderArn": _arn("aws:iam", f"oidc-provider/{args.name}"),
            "oidcProviderUrl": placeholder(args.name, "oidc-url"),
            "oidcIssuer": placeholder(args.name, "oidc-issuer"),
            "clusterIngressRuleId": placeholder(args.name, "ingress-rule"),
            "defaultNodeGroupAsgName": "",
            "fargateProfileId": "",
            "fargateProfileStatus": "",
        }

    def call(self, args: MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ZONES, "zoneIds": [f"usw2-az{i}" for i in range(1, 7)]}
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:aws:iam::{ACCOUNT}:user/render"
            return {"accountId": ACCOUNT, "arn": arn, "userId": "render", "id": ACCOUNT}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if token == "aws:index/getRegion:getRegion":
            return {"name": REGION, "region": REGION, "id": REGION}
        # An invoke nobody taught the render is a bug in the render, not a silent empty answer.
        raise NotImplementedError(f"the offline render has no answer for invoke {token}")


def _eks_cluster_state(name: str, cluster_name: str | None = None) -> dict[str, Any]:
    # pulumi-eks names the EKS cluster after its `name` input when one is given.
    return {
        "name": cluster_name or placeholder(name, "cluster-name"),
        "arn": _arn("aws:eks", f"cluster/{name}"),
        "endpoint": placeholder(name, "endpoint"),
        "certificateAuthority": {"data": placeholder(name, "ca-data")},
        "version": placeholder(name, "version"),
        "vpcConfig": {"clusterSecurityGroupId": placeholder(name, "cluster-sg")},
        "identities": [{"oidcs": [{"issuer": placeholder(name, "oidc-issuer")}]}],
    }


class RecordingMonitor(MockMonitor):
    """A MockMonitor that also keeps each registration's options (protect, dependsOn, ...)."""

    def __init__(self, mocks: PlatformMocks):
        super().__init__(mocks)
        mocks.monitor = self
        self.recorded: list[Resource] = []
        # Children of remote components that the mocks register by hand (not run under mocks).
        self.children: list[Resource] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        for child in self.children:
            if not child.parent and child.name == f"{request.name}-eksCluster":
                child.parent = response.urn
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object)
            self.recorded.append(
                Resource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    custom=bool(request.custom),
                    inputs=plain(inputs),
                    protect=bool(request.protect),
                    depends_on=sorted(request.dependencies),
                    provider=request.provider,
                    retain_on_delete=bool(request.retainOnDelete),
                    ignore_changes=list(request.ignoreChanges),
                    aliases=[_alias(a) for a in request.aliases],
                    property_dependencies={
                        key: sorted(deps.urns)
                        for key, deps in request.propertyDependencies.items()
                        if deps.urns
                    },
                    remote=bool(request.remote),
                )
            )
        return response


def _alias(alias: Any) -> dict[str, Any]:
    """An alias as the engine gets it: {"urn": ...} or its spec ({"type": ..., "name": ...})."""
    if alias.HasField("urn"):
        return {"urn": alias.urn}
    spec = json_format.MessageToDict(alias.spec)
    return {k: v for k, v in spec.items() if v != ""}


def plain(value: Any) -> Any:
    """Inputs as plain JSON-able data: secrets masked, resource references as their URN."""
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, pulumi.Resource):
        return _sync_await(value.urn.future())
    if isinstance(value, pulumi.FileAsset):
        # The file's name, not its absolute path: renders of two checkouts stay identical.
        return f"FileAsset({Path(value.path).name})"
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return repr(value)
    if value == rpc.UNKNOWN:
        return "<unknown>"
    # The engine's wire format (protobuf Struct) carries every number as a double.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
