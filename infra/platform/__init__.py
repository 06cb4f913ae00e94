"""The platform on the cluster: GPU enablement (gpu), the KubeRay operator (kuberay) and
observability (monitoring: Prometheus, Grafana, Alertmanager, the scrape targets).

May import: infra.foundation, infra.capacity, infra.config and the shared modules at the top of
`infra/`. Not infra.serving.
"""
