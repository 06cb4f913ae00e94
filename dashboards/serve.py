"""Dashboard 3, Ray Serve: the serving layer per application and deployment."""

from __future__ import annotations

from dashboards import metrics as m
from dashboards.filters import CLUSTER, CLUSTER_VAR, ray
from dashboards.promql import div, gte, max_by, num, quantile, rate, ratio, sum_by
from dashboards.spec import DashboardSpec, PanelSpec, Query, Variable

DEPLOYMENT = "deployment"
DEPLOYMENT_VAR = Variable(
    "deployment", "Deployment", ray(m.SERVE_REPLICA_HEALTHY), DEPLOYMENT
)
PER_DEPLOYMENT = "{{application}} {{deployment}}"


def _serve(metric: str, **regex: str):
    return ray(metric, deployment="$deployment", **regex)


def spec() -> DashboardSpec:
    by = ("application", DEPLOYMENT)
    traffic = (
        PanelSpec(
            "Requests per second by deployment",
            "Requests each Serve deployment handled per second (ingress and model servers).",
            (Query(sum_by(rate(_serve(m.SERVE_REQUESTS)), *by), PER_DEPLOYMENT),),
            unit="reqps",
        ),
        PanelSpec(
            "Error ratio by deployment",
            "Share of a deployment's requests that raised an error; 0 when idle.",
            (Query(ratio(sum_by(rate(_serve(m.SERVE_ERRORS)), *by),
                         sum_by(rate(_serve(m.SERVE_REQUESTS)), *by)), PER_DEPLOYMENT),),
            unit="percentunit", max_value=1,
        ),
        PanelSpec(
            "HTTP latency by application (p50/p95/p99)",
            "End-to-end latency at the Serve HTTP proxy, milliseconds as exported by Ray.",
            tuple(
                Query(quantile(p, m.SERVE_HTTP_LATENCY_MS + "_bucket", by=["application"],
                               regex={CLUSTER: "$cluster"}),
                      f"p{round(p * 100)} {{{{application}}}}")
                for p in (0.5, 0.95, 0.99)
            ),
            unit="ms",
        ),
        PanelSpec(
            "Processing latency p95 by deployment",
            "Time a replica spent on a request, p95, milliseconds.",
            (Query(quantile(0.95, m.SERVE_PROCESSING_MS + "_bucket", by=list(by),
                            regex={CLUSTER: "$cluster", DEPLOYMENT: "$deployment"}),
                   PER_DEPLOYMENT),),
            unit="ms",
        ),
    )
    capacity = (
        PanelSpec(
            "Queue depth",
            "Requests queued in Serve handles waiting for a replica (queued), and requests "
            "being processed by replicas (ongoing), per deployment.",
            (
                Query(sum_by(_serve(m.SERVE_QUEUED), *by), "queued " + PER_DEPLOYMENT),
                Query(sum_by(_serve(m.SERVE_REPLICA_ONGOING), *by), "ongoing " + PER_DEPLOYMENT),
            ),
        ),
        PanelSpec(
            "Replicas: healthy vs autoscaling target",
            "Healthy replicas per deployment against the replica count the autoscaler wants.",
            (
                Query(sum_by(gte(_serve(m.SERVE_REPLICA_HEALTHY), num(1)), *by),
                      "healthy " + PER_DEPLOYMENT),
                Query(max_by(_serve(m.SERVE_TARGET_REPLICAS), *by), "target " + PER_DEPLOYMENT),
            ),
        ),
        PanelSpec(
            "Replica starts",
            "Replicas started per deployment in each interval (a steady stream means crashes).",
            (Query(sum_by(rate(_serve(m.SERVE_REPLICA_STARTS)), *by), PER_DEPLOYMENT),),
            unit="short",
        ),
    )
    by_target = ("alias", "target")
    canaries = (
        PanelSpec(
            "Alias targets: error ratio and rollbacks",
            "Per alias target with a rollback rule: the share of its requests through the alias"
            " that failed over the rule's window (5xx, or a late first token), and 1 while the"
            " gateway has rolled the canary back (serving.aliases[].rollback).",
            (
                Query(max_by(ray(m.GATEWAY_ALIAS_ERROR_RATIO), *by_target),
                      "error ratio {{alias}} / {{target}}"),
                Query(max_by(ray(m.GATEWAY_ALIAS_ROLLED_BACK), *by_target),
                      "rolled back {{alias}} / {{target}}"),
            ),
            unit="percentunit", max_value=1,
        ),
    )
    head_mem = ray(m.RAY_NODE_MEM_USED, eq={"RayNodeType": "head"})
    head_total = ray(m.RAY_NODE_MEM_TOTAL, eq={"RayNodeType": "head"})
    head = (
        PanelSpec(
            "Head node memory",
            "Memory used on the Ray head node as a share of what it may use (its pod limit "
            "on Kubernetes); an OOM kill restarts the head and with it the Serve controller.",
            (Query(div(max_by(head_mem, CLUSTER), max_by(head_total, CLUSTER)),
                   "{{ray_io_cluster}}"),),
            unit="percentunit", max_value=1,
        ),
        PanelSpec(
            "Head node CPU",
            "CPU utilisation of the Ray head node (percent of its cores).",
            (Query(max_by(ray(m.RAY_NODE_CPU, eq={"RayNodeType": "head"}), CLUSTER),
                   "{{ray_io_cluster}}"),),
            unit="percent",
        ),
    )
    per_source = "{{source}}"
    rag = (
        PanelSpec(
            "RAG retrieval latency (p50/p95/p99)",
            "The database search (and rerank) of a retrieval, the query's embedding excluded, "
            "per source (the Vector Stores search API or a pipeline), seconds.",
            tuple(
                Query(quantile(p, m.RAG_RETRIEVAL_S + "_bucket", by=["source"],
                               regex={CLUSTER: "$cluster"}), f"p{round(p * 100)} {per_source}")
                for p in (0.5, 0.95, 0.99)
            ),
            unit="s",
        ),
        PanelSpec(
            "RAG chunks returned per search",
            "Average chunks a search returned (after the score threshold), per source.",
            (Query(ratio(sum_by(rate(ray(m.RAG_CHUNKS_SEARCHED + "_sum")), "source"),
                         sum_by(rate(ray(m.RAG_CHUNKS_SEARCHED + "_count")), "source")),
                   per_source),),
        ),
        PanelSpec(
            "RAG ingestion rate",
            "Chunks written to vector stores per second (and file bytes per second).",
            (Query(sum_by(rate(ray(m.RAG_INGESTED_CHUNKS))), "chunks/s"),
             Query(sum_by(rate(ray(m.RAG_INGESTED_BYTES))), "bytes/s")),
            unit="short",
        ),
        PanelSpec(
            "RAG stored chunks by tenant",
            "Chunks in each API key's vector stores (every gateway replica reports it: max).",
            (Query(max_by(ray(m.RAG_STORE_CHUNKS), "tenant"), "{{tenant}}"),),
            unit="short",
        ),
        PanelSpec(
            "RAG database errors",
            "Database operations that failed because PostgreSQL was unreachable (each one a "
            "503 to the client), per second by operation.",
            (Query(sum_by(rate(ray(m.RAG_DB_ERRORS)), "operation"), "{{operation}}"),),
            unit="short",
        ),
    )
    return DashboardSpec(
        uid="ray-serve",
        title="Ray Serve",
        about="Ray Serve applications and deployments: traffic, errors, latency, queues, "
              "replicas, canary rollbacks, the head node, and RAG (retrieval, ingestion, the "
              "database).",
        variables=(CLUSTER_VAR, DEPLOYMENT_VAR),
        rows=(("Traffic", traffic), ("Queues and replicas", capacity), ("Canaries", canaries),
              ("Head node", head), ("RAG: retrieval, ingestion, database", rag)),
    )
