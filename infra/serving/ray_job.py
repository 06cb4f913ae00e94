"""One-shot Jobs on the pinned Ray image (model imports, the RAG schema migration).

Both run a Python script on the image the Ray pods use, as the image's own non-root user, on the
system nodes, with a read-only root file system and one size-limited scratch volume; only the
script, its env, identity and sizes differ.
"""

from __future__ import annotations

from typing import Any

from infra import labels, versions

SCRATCH = "/scratch"
# The ray images' own user (ray-project/ray docker/base-deps/Dockerfile: RAY_UID=1000,
# RAY_GID=100); its home is writable, the rest of the image is not needed.
RAY_UID, RAY_GID = 1000, 100


def ray_image_job(
    *, name: str, namespace: str, job_labels: dict[str, str], annotations: dict[str, str],
    backoff_limit: int, ttl_seconds: int, deadline_seconds: int, service_account: str,
    container: str, script: str, env: list[dict[str, Any]], cpu: str, memory: str,
    scratch: str,
) -> dict[str, Any]:
    """A `batch/v1` Job (a plain dict, as `kubernetes.batch.v1.Job` takes it) running `script`
    with `python -c` in one container; pulumi waits for it as long as it may run."""
    sched = labels.ray_head_scheduling()
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(job_labels),
            "annotations": {
                **annotations,
                # pulumi-kubernetes waits for a Job to complete; as long as it may run.
                "pulumi.com/timeoutSeconds": str(deadline_seconds),
            },
        },
        "spec": {
            "backoffLimit": backoff_limit,
            "ttlSecondsAfterFinished": ttl_seconds,
            "activeDeadlineSeconds": deadline_seconds,
            "template": {
                "metadata": {"labels": dict(job_labels)},
                "spec": {
                    "serviceAccountName": service_account,
                    # Pod Identity needs no API-server token in the pod.
                    "automountServiceAccountToken": False,
                    "restartPolicy": "Never",
                    "nodeSelector": sched["nodeSelector"],
                    "tolerations": sched["tolerations"],
                    "securityContext": {
                        "runAsNonRoot": True, "runAsUser": RAY_UID, "runAsGroup": RAY_GID,
                        "fsGroup": RAY_GID, "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": container,
                        "image": versions.RAY_LLM_IMAGE.ref,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "-c", script],
                        "env": env,
                        "resources": {
                            "requests": {"cpu": cpu, "memory": memory,
                                         "ephemeral-storage": scratch},
                            "limits": {"memory": memory, "ephemeral-storage": scratch},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
                    }],
                    "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": scratch}}],
                },
            },
        },
    }
