"""The S3 path, end to end on this machine: a local S3-compatible server (moto, started here)
holds the tiny model and the serve_app bundle, and the REAL loaders fetch them from `s3://`:

- Ray Serve LLM's own model download (`model_source: s3://...`: boto3 in
  ray/llm/_internal/common/utils/cloud_filesystem/s3_filesystem.py, pointed at the server with
  AWS_ENDPOINT_URL, which botocore honours) -> vLLM -> a chat completion via `openai`;
- Ray's runtime_env fetcher (`working_dir: s3://.../serve_app-<sha256>.zip`: boto3 +
  smart_open in ray/_private/runtime_env/protocol.py) unpacks the content-addressed bundle that
  `pulumi up` uploads, and serve_app imports from it;
- Ray Serve LLM's dynamic LoRA loading (`lora.source: s3://.../loras/tiny-s3/`): a PEFT adapter
  made here for the tiny model is listed by the gateway, downloaded by the replica on first use
  and applied by vLLM's CPU build.

Nothing of ours stands in for either loader; the server is an S3 API, not a mock of our code.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import KEY_ADMIN, LOG_DIR, LocalApp, _require, running_app
from tools.process import free_port

# Starts its own app and S3 server: after the session app's own tests.
pytestmark = [pytest.mark.e2e, pytest.mark.e2e_order(3)]

BUCKET = "llm-platform-e2e-models"
MODEL_ID = "tiny-s3"
MODEL_PREFIX = "models/tiny-chat/"
LORA_PREFIX = f"loras/{MODEL_ID}/"
ADAPTER = f"{MODEL_ID}:ft"  # the adapter folder `ft` under LORA_PREFIX
KEY_BASE_ONLY = "sk-e2e-base-only-424242"  # allowedModels: the base model, not its adapter
# Ray Serve LLM reads an optional `hash` object and names the local snapshot after it.
SNAPSHOT = "e2e0000000000000000000000000000000000001"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "e2e", "AWS_SECRET_ACCESS_KEY": "e2e-secret"}


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"moto server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"moto server not listening on {port} after {timeout:.0f}s")


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A local S3 API (moto's standalone server, pinned in requirements-dev.txt)."""
    _require(["moto", "flask", "boto3"])
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / "moto.log"
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_port(port, proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _s3_env(endpoint: str) -> dict[str, str]:
    return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-west-2",
            "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="module")
def store(s3_server: str) -> dict[str, str]:
    """The bucket, filled as an operator would: the tiny model under models/, the code bundle
    under code/ (the same bytes `pulumi up` uploads)."""
    import boto3

    from infra.serving import code_bundle
    from serve_app.tiny_model import ensure_tiny_model

    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-west-2",
                      aws_access_key_id="e2e", aws_secret_access_key="e2e-secret")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    model_dir = ensure_tiny_model("tiny-chat", 1)
    for path in sorted(model_dir.iterdir()):
        s3.upload_file(str(path), BUCKET, MODEL_PREFIX + path.name)
    s3.put_object(Bucket=BUCKET, Key=MODEL_PREFIX + "hash", Body=SNAPSHOT.encode())
    from tests.support.tiny_lora import make_tiny_lora

    _require(["peft"])
    adapter = make_tiny_lora(model_dir, LOG_DIR / "lora-ft")
    for path in sorted(adapter.iterdir()):
        s3.upload_file(str(path), BUCKET, LORA_PREFIX + "ft/" + path.name)
    bundle = code_bundle.build()
    code_key = bundle.key("code/")
    s3.put_object(Bucket=BUCKET, Key=code_key, Body=bundle.data)
    return {"model": f"s3://{BUCKET}/{MODEL_PREFIX}", "code": f"s3://{BUCKET}/{code_key}",
            "sha256": bundle.sha256}


@pytest.fixture(scope="module")
def s3_app(
    store: dict[str, str], s3_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalApp, Path]]:
    _require(["ray", "vllm", "openai", "transformers"])
    from serve_app.local import local_serving_config

    data = local_serving_config().model_dump(mode="json", by_alias=True)
    model = next(m for m in data["models"] if m["id"] == "tiny-chat")
    lora = {"source": f"s3://{BUCKET}/{LORA_PREFIX}", "maxAdapters": 2, "maxRank": 8}
    data["models"] = [dict(model, id=MODEL_ID, source=store["model"], lora=lora)]
    data.update(aliases=[{"name": "tuned", "targets": [{"model": ADAPTER, "weight": 1}]}],
                appName="s3-e2e")
    data["auth"]["allowedModels"] = {"base-only": [MODEL_ID]}
    serving = LOG_DIR / "serving-s3.json"
    serving.write_text(json.dumps(data))
    hf_home = tmp_path_factory.mktemp("hf-home")  # an empty cache: only S3 can fill it
    env = dict(
        os.environ, **_s3_env(s3_server), PORT=str(free_port()),
        LLM_PLATFORM_SERVING_FILE=str(serving),
        LLM_PLATFORM_API_KEYS=f"admin:{KEY_ADMIN},base-only:{KEY_BASE_ONLY}",
        HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
    )
    with running_app(env, LOG_DIR / "local-s3.log") as app:
        yield app, hf_home


def test_model_source_s3_is_downloaded_by_ray_serve_llm_and_served(s3_app) -> None:
    app, hf_home = s3_app
    reply = app.client().chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": "Hello"}], max_tokens=8
    )
    assert reply.model == MODEL_ID
    assert reply.choices[0].message.content is not None
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    # Ray Serve LLM wrote the objects into the (empty) HF cache under the bucket's `hash`.
    snapshot = hf_home / "hub" / f"models--{MODEL_ID}" / "snapshots" / SNAPSHOT
    assert (snapshot / "model.safetensors").is_file(), sorted(hf_home.rglob("*"))
    assert (snapshot / "tokenizer.json").is_file()


def test_model_objects_were_read_from_the_s3_server(s3_app, s3_server: str) -> None:
    log = (LOG_DIR / "moto.log").read_text(errors="replace")
    assert f"GET /{BUCKET}/{MODEL_PREFIX}model.safetensors" in log, log[-3000:]


def test_lora_adapter_from_s3_is_listed_and_changes_the_output(s3_app) -> None:
    app, _ = s3_app
    client = app.client()
    assert {m.id for m in client.models.list()} == {MODEL_ID, ADAPTER, "tuned"}
    messages = [{"role": "user", "content": "Hello"}]

    def greedy(model: str) -> str:
        r = client.chat.completions.create(model=model, messages=messages, max_tokens=8,
                                           temperature=0)
        assert r.model == model
        return r.choices[0].message.content

    # Same prompt, greedy decoding: the random non-zero adapter must change the tokens.
    assert greedy(ADAPTER) != greedy(MODEL_ID)
    log = (LOG_DIR / "moto.log").read_text(errors="replace")
    assert f"GET /{BUCKET}/{LORA_PREFIX}ft/adapter_model.safetensors" in log, log[-3000:]


def test_alias_can_point_at_an_adapter(s3_app) -> None:
    app, _ = s3_app
    r = app.client().chat.completions.create(
        model="tuned", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert r.model == ADAPTER


def test_unknown_adapter_is_a_404(s3_app) -> None:
    import openai

    app, _ = s3_app
    with pytest.raises(openai.NotFoundError) as exc:
        app.client().chat.completions.create(
            model=f"{MODEL_ID}:nope", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
    assert exc.value.body["code"] == "model_not_found"


def test_adapter_needs_its_own_permission(s3_app) -> None:
    import openai

    app, _ = s3_app
    client = app.client(KEY_BASE_ONLY)
    assert {m.id for m in client.models.list()} == {MODEL_ID}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model=ADAPTER, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
    client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )


_PROBE = """
import hashlib, json, pathlib, ray
ray.init(num_cpus=1, include_dashboard=False, runtime_env={"working_dir": %(uri)r})

@ray.remote
def where():
    import serve_app, serve_app.app  # the Serve import path resolves from the bundle
    root = pathlib.Path(serve_app.__file__).parent
    digest = hashlib.sha256(b"".join(
        p.read_bytes() for p in sorted(root.rglob("*.py")))).hexdigest()
    return {"file": serve_app.__file__, "digest": digest}

print("PROBE " + json.dumps(ray.get(where.remote())))
ray.shutdown()
"""


def test_code_bundle_is_a_working_dir_ray_fetches_from_s3(store, s3_server, tmp_path) -> None:
    """Ray's own runtime_env fetcher downloads `code/serve_app-<sha256>.zip`, strips the
    bundle's top-level directory, and the replica imports serve_app from there (the repo is
    not on the path: the probe runs from an empty directory)."""
    _require(["ray", "smart_open"])
    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(_s3_env(s3_server))
    out = subprocess.run(
        [sys.executable, "-c", _PROBE % {"uri": store["code"]}],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("PROBE ")), None)
    assert line, f"probe failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    found = json.loads(line.removeprefix("PROBE "))
    assert not found["file"].startswith(str(repo)), found
    local = repo / "serve_app"
    expected = hashlib.sha256(b"".join(
        p.read_bytes() for p in sorted(local.rglob("*.py")))).hexdigest()
    assert found["digest"] == expected
