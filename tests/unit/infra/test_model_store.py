"""infra/serving/model_store.py and infra/serving/code_bundle.py: least-privilege documents
(parliament-clean), the TLS-only bucket policy, the pods' env, and the content-addressed serve_app
bundle."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from parliament import analyze_policy_string, enhance_finding

from infra.serving import code_bundle
from infra.serving.model_store import (
    HF_TOKEN_KEY,
    HF_TOKEN_SECRET,
    default_bucket_name,
    pod_env,
    reader_policy,
    tls_only_bucket_policy,
)

BUCKET_ARN = "arn:aws:s3:::llm-platform-prod-models-123456789012"
KEY_ARN = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _reader(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(bucket_arn=BUCKET_ARN, key_arn=KEY_ARN, region="us-west-2",
                                prefixes=["models/", "code/"], extra_grants=[])
    args.update(kw)
    return reader_policy(**args)


def findings(doc: dict[str, Any]) -> list[str]:
    """Every parliament finding, of any severity: these documents have no exceptions."""
    out = []
    for f in analyze_policy_string(json.dumps(doc)).findings:
        enhance_finding(f)
        out.append(f"{f.issue} {f.severity} {f.detail}")
    return out


def test_reader_policy_is_parliament_clean_with_and_without_grants() -> None:
    assert findings(_reader()) == []
    grants = ["s3://shared-weights/llama/", "s3://shared-weights/mistral/", "s3://other/x/"]
    assert findings(_reader(extra_grants=grants)) == []


def test_tls_only_bucket_policy_is_parliament_clean() -> None:
    assert findings(tls_only_bucket_policy(BUCKET_ARN)) == []


def test_reader_may_read_only_the_models_and_code_prefixes() -> None:
    doc = _reader()
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert set(by_sid) == {"ReadModelsAndCode", "ListModelsAndCode", "DecryptThroughS3"}
    assert all(s["Effect"] == "Allow" for s in doc["Statement"])
    assert by_sid["ReadModelsAndCode"]["Action"] == "s3:GetObject"
    assert by_sid["ReadModelsAndCode"]["Resource"] == [f"{BUCKET_ARN}/models/*",
                                                       f"{BUCKET_ARN}/code/*"]
    listing = by_sid["ListModelsAndCode"]
    assert (listing["Action"], listing["Resource"]) == ("s3:ListBucket", BUCKET_ARN)
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models/*", "code/*"]}}
    kms = by_sid["DecryptThroughS3"]
    assert (kms["Action"], kms["Resource"]) == ("kms:Decrypt", KEY_ARN)
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}}
    text = json.dumps(doc)
    assert "s3:Put" not in text and "s3:Delete" not in text and '"*"' not in text


def test_explicit_grants_extend_the_policy_per_bucket() -> None:
    doc = _reader(extra_grants=["s3://shared-weights/llama/", "s3://shared-weights/qwen/"])
    extra = [s for s in doc["Statement"] if s["Sid"].endswith("Grant0")]
    read, listing = sorted(extra, key=lambda s: s["Sid"], reverse=True)
    assert read["Resource"] == ["arn:aws:s3:::shared-weights/llama/*",
                                "arn:aws:s3:::shared-weights/qwen/*"]
    assert listing["Resource"] == "arn:aws:s3:::shared-weights"
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["llama/*", "qwen/*"]


def test_tls_only_policy_denies_plain_http_for_bucket_and_objects() -> None:
    (st,) = tls_only_bucket_policy(BUCKET_ARN)["Statement"]
    assert st["Effect"] == "Deny" and st["Principal"] == "*" and st["Action"] == "s3:*"
    assert st["Resource"] == [BUCKET_ARN, f"{BUCKET_ARN}/*"]
    assert st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_default_bucket_name_fits_s3_limits_for_long_stack_names() -> None:
    name = default_bucket_name("llm-platform-staging-eu", "123456789012")
    assert name == "llm-platform-staging-eu-models-123456789012"
    assert 3 <= len(name) <= 63


def test_pod_env_sets_region_and_takes_the_token_from_the_secret() -> None:
    assert pod_env("eu-west-1", hf_token=False) == [{"name": "AWS_REGION", "value": "eu-west-1"}]
    env = {e["name"]: e for e in pod_env("eu-west-1", hf_token=True)}
    assert env["HF_TOKEN"] == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": HF_TOKEN_SECRET, "key": HF_TOKEN_KEY}}}
    assert "value" not in env["HF_TOKEN"]


# ------------------------------------------------------------------------------- code bundle
def _package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "serve_app"
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    return pkg


def test_bundle_of_the_real_serve_app_is_reproducible_and_importable_by_ray() -> None:
    a, b = code_bundle.build(), code_bundle.build()
    assert a.data == b.data and a.sha256 == b.sha256
    names = zipfile.ZipFile(io.BytesIO(a.data)).namelist()
    # One top-level directory (Ray strips it), then serve_app/ with the Serve import path.
    assert {n.split("/")[0] for n in names} == {"bundle"}
    assert "bundle/serve_app/app.py" in names and "bundle/serve_app/__init__.py" in names
    assert names == sorted(names)
    assert a.key("code/") == f"code/serve_app-{a.sha256}.zip"


def test_bundle_ignores_mtimes_and_caches_but_follows_content(tmp_path: Path) -> None:
    pkg = _package(tmp_path / "one", {"__init__.py": "", "app.py": "X = 1\n"})
    first = code_bundle.build(pkg)
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0junk")
    (pkg / "app.py").touch()  # new mtime, same content
    assert code_bundle.build(pkg).sha256 == first.sha256
    twin = _package(tmp_path / "two", {"app.py": "X = 1\n", "__init__.py": ""})
    assert code_bundle.build(twin).sha256 == first.sha256  # another checkout, same bytes
    (pkg / "app.py").write_text("X = 2\n")
    assert code_bundle.build(pkg).sha256 != first.sha256
    for info in zipfile.ZipFile(io.BytesIO(first.data)).infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o644


def test_bundle_file_is_named_by_its_hash(tmp_path: Path) -> None:
    bundle = code_bundle.build()
    path = code_bundle.write(bundle, tmp_path)
    assert path.name == f"serve_app-{bundle.sha256}.zip"
    assert path.read_bytes() == bundle.data


def test_default_bundle_is_the_repos_serve_app() -> None:
    # code_bundle.ROOT is counted from the module's own path: a move of the module must not
    # leave it pointing at a folder without serve_app/ (an empty zip would still deploy).
    names = set(code_bundle.build().files)
    assert {"bundle/serve_app/app.py", "bundle/serve_app/config.py"} <= names
