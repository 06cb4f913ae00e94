"""The render summary names the serve_app bundle (code version) each application runs."""

from __future__ import annotations

from infra.config import own_keys, validate
from infra.serving.rayservice import RayPodExtras, rayservice
from tools.mocks import Resource
from tools.render import Rendered, stack_config, summarize, summary_markdown

SHA = "84b4c32bb208308dfdc552889e7a6d62653f904fd5faef4113a00aae7004468a"


def _rendered(extras: RayPodExtras) -> Rendered:
    values, secrets = stack_config("prod")
    obj = rayservice(validate(*own_keys(values, set(secrets))), extras)
    res = Resource(type="kubernetes:ray.io/v1:RayService", name="rs", urn="urn:rs", parent="",
                   custom=True, inputs=obj)
    return Rendered("prod", [res])


def test_summary_lists_the_bundle_hash_per_application() -> None:
    uri = f"s3://llm-platform-prod-models-123456789012/code/serve_app-{SHA}.zip"
    summary = summarize(_rendered(RayPodExtras(working_dir=uri)))
    assert summary["codeVersions"] == [{"rayService": "llm-platform",
                                        "application": "llm-platform",
                                        "codeVersion": SHA[:12], "workingDir": uri}]
    assert f"| llm-platform | llm-platform | `{SHA[:12]}` | {uri} |" in summary_markdown(summary)


def test_summary_says_image_when_no_bundle_is_set() -> None:
    summary = summarize(_rendered(RayPodExtras()))
    assert [c["codeVersion"] for c in summary["codeVersions"]] == ["image"]
    assert "| llm-platform | llm-platform | `image` | - |" in summary_markdown(summary)
