"""The render summary names the serve_app bundle (code version) each application runs."""

from __future__ import annotations

import yaml

from tools.mocks import Resource
from tools.render import Rendered, summarize, summary_markdown

SHA = "84b4c32bb208308dfdc552889e7a6d62653f904fd5faef4113a00aae7004468a"


def _rayservice(apps: list[dict]) -> Resource:
    serve = {"applications": apps}
    obj = {"apiVersion": "ray.io/v1", "kind": "RayService",
           "metadata": {"name": "llm-platform", "namespace": "serving"},
           "spec": {"serveConfigV2": yaml.safe_dump(serve)}}
    return Resource(type="kubernetes:ray.io/v1:RayService", name="rs", urn="urn:rs", parent="",
                    custom=True, inputs=obj)


def test_summary_lists_the_bundle_hash_per_application() -> None:
    uri = f"s3://llm-platform-prod-models-123456789012/code/serve_app-{SHA}.zip"
    rs = _rayservice([
        {"name": "llm-platform", "import_path": "serve_app.app:build_app",
         "runtime_env": {"working_dir": uri}},
        {"name": "baked", "import_path": "serve_app.app:build_app"},
    ])
    summary = summarize(Rendered("prod", [rs]))
    assert summary["codeVersions"] == [
        {"rayService": "llm-platform", "application": "llm-platform",
         "codeVersion": SHA[:12], "workingDir": uri},
        {"rayService": "llm-platform", "application": "baked", "codeVersion": "image",
         "workingDir": ""},
    ]
    text = summary_markdown(summary)
    assert f"| llm-platform | llm-platform | `{SHA[:12]}` | {uri} |" in text
    assert "| llm-platform | baked | `image` | - |" in text
