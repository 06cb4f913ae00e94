"""infra/serving/model_import.py: the import Job's spec, its write-only policy (parliament-clean),
and bad `modelStore.imports` input as ConfigErrors naming the key."""

from __future__ import annotations

import copy
import re
from typing import Any

from infra import labels, versions
from infra.config.model_store import ModelImport, ModelStoreConfig
from infra.serving.model_import import (
    BACKOFF_LIMIT,
    IMPORT_SCRIPT,
    TTL_SECONDS_AFTER_FINISHED,
    job_name,
    job_spec,
    writer_policy,
)
from tests.unit.infra.test_config_model_store import problems, values_of
from tests.unit.infra.test_model_store import BUCKET_ARN, KEY_ARN, findings

SHA = "0123456789abcdef0123456789abcdef01234567"  # sha-shaped, not a real commit
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def _imp(**kw: Any) -> ModelImport:
    return ModelImport.model_validate(
        {"repo": "Qwen/Qwen2.5-0.5B-Instruct", "revision": SHA, "prefix": "qwen-0.5b/", **kw})


def _spec(hf_token: bool = False, **kw: Any) -> dict[str, Any]:
    cfg = ModelStoreConfig.model_validate({"imports": [_imp(**kw).model_dump(by_alias=True)]})
    return job_spec(cfg.imports[0], cfg=cfg, bucket="b", namespace="serving",
                    region="us-west-2", hf_token=hf_token)


def test_job_name_is_a_dns_label_that_changes_with_the_revision() -> None:
    name = job_name(_imp())
    assert DNS_LABEL.match(name) and len(name) <= 50
    assert name == job_name(_imp())  # stable: the same import is the same Job
    assert job_name(_imp(revision="v2.0")) != name
    assert job_name(_imp(prefix="other/")) != name
    long = _imp(repo="o/" + "A_very.Long-name" * 5)
    assert DNS_LABEL.match(job_name(long)) and len(job_name(long)) <= 50


def test_job_runs_the_pinned_image_once_on_the_cpu_pool_with_bounded_resources() -> None:
    spec = _spec()
    assert spec["apiVersion"] == "batch/v1" and spec["kind"] == "Job"
    job = spec["spec"]
    assert job["backoffLimit"] == BACKOFF_LIMIT and job["ttlSecondsAfterFinished"] == (
        TTL_SECONDS_AFTER_FINISHED)
    assert job["activeDeadlineSeconds"] == 3600
    assert spec["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "3600"
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "model-importer"
    assert pod["nodeSelector"] == labels.ray_head_scheduling()["nodeSelector"]
    (c,) = pod["containers"]
    assert c["image"] == versions.RAY_LLM_IMAGE.ref
    assert c["command"][:2] == ["python", "-c"] and "pip" not in c["command"][2]
    assert c["resources"]["requests"] == {"cpu": "2", "memory": "4Gi",
                                          "ephemeral-storage": "40Gi"}
    assert pod["volumes"] == [{"name": "scratch", "emptyDir": {"sizeLimit": "40Gi"}}]
    env = {e["name"]: e for e in c["env"]}
    assert env["DEST_PREFIX"]["value"] == "models/qwen-0.5b/"
    assert env["HF_REVISION"]["value"] == SHA
    assert "HF_TOKEN" not in env


def test_token_comes_from_the_secret_by_reference() -> None:
    (token,) = [e for e in _spec(hf_token=True)["spec"]["template"]["spec"]["containers"][0]["env"]
                if e["name"] == "HF_TOKEN"]
    assert token == {"name": "HF_TOKEN",
                     "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}


def test_script_is_valid_python_that_downloads_the_revision_and_uploads_with_boto3() -> None:
    compile(IMPORT_SCRIPT, "<import>", "exec")
    assert "snapshot_download(repo_id=repo, revision=rev" in IMPORT_SCRIPT
    assert "s3.upload_file" in IMPORT_SCRIPT


def test_writer_policy_is_parliament_clean_and_write_only_on_the_prefixes() -> None:
    doc = writer_policy(bucket_arn=BUCKET_ARN, key_arn=KEY_ARN, region="us-west-2",
                        prefixes=["models/a/", "models/b/"])
    assert findings(doc) == []
    s3, kms = doc["Statement"]
    assert s3["Action"] == ["s3:PutObject", "s3:AbortMultipartUpload"]
    assert s3["Resource"] == [f"{BUCKET_ARN}/models/a/*", f"{BUCKET_ARN}/models/b/*"]
    assert kms["Resource"] == KEY_ARN
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}}


def _with_imports(imports: list[dict[str, Any]], **store: Any) -> dict[str, Any]:
    values, _ = values_of("dev")
    values = copy.deepcopy(values)
    values["modelStore"] = {**values.get("modelStore", {}), "imports": imports, **store}
    return values


def test_default_is_no_import() -> None:
    assert ModelStoreConfig().imports == []


def test_bad_imports_name_the_key() -> None:
    ok = {"repo": "a/b", "revision": SHA, "prefix": "b/"}
    found = problems(_with_imports([
        {**ok, "revision": "main"},
        {**ok, "prefix": "../x/"},
        {**ok, "repo": "no-owner"},
        {"repo": "a/b", "prefix": "c/"},
    ]))
    joined = "\n".join(found)
    assert "modelStore.imports[0].revision: revision 'main' is a branch that moves" in joined
    assert "modelStore.imports[1].prefix" in joined
    assert "modelStore.imports[2].repo" in joined
    assert "modelStore.imports[3].revision" in joined
    (dupe,) = problems(_with_imports([ok, {**ok, "repo": "c/d"}]))
    assert "modelStore.imports" in dupe and "imports[1].prefix 'b/' is also imports[0]'s" in dupe
    (scratch,) = problems(_with_imports([{**ok, "scratchGib": 0}]))
    assert "modelStore.imports[0].scratchGib" in scratch
    (sa,) = problems(_with_imports([ok], importerServiceAccount="ray-serving"))
    assert "modelStore.importerServiceAccount" in sa and "'ray-serving'" in sa
