"""Every Helm release's values against the chart's own `values.yaml`, for every stack.

Helm ignores a values key the chart does not read, so a misspelt or misplaced key renders,
deploys and does nothing. Each release (chart name + version, as the render records them) maps
to `../shared/upstream/<chart>-<version>_values.yaml` (SOURCES.md naming); subcharts' blocks
(`Chart.yaml` dependencies, by alias or name) are checked against their own files.

The rule for keys, walking our values beside the chart's defaults:
- a key the chart's map does not have is an error;
- under a key whose default is an empty map `{}` or null, keys are free: the chart passes the
  map through (podAnnotations, nodeSelector, extraEnv-style maps, ...);
- keys holding a Kubernetes type (`KUBERNETES_TYPED`: resources, affinity, securityContext,
  ...) are not chart keys at all: the API server validates them when the chart renders them;
- lists are passed through whole (tolerations, env lists) and not descended into.

Images: where our values set an image (a map with `repository` and `tag`/`digest`) at a path
where the chart itself pins one, repository, tag and digest must equal the chart's, unless
`IMAGE_OVERRIDES` names the path with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.upstream import chart_name, load_yaml, upstream_file
from tools.mocks import Resource
from tools.render import STACKS, Rendered

Render = Callable[[str], Rendered]

# Releases with no upstream values file, by chart name, with the reason that is fine.
NO_VALUES_FILE: dict[str, str] = {
    "karpenter-crd": "the release sets no values (CustomResourceDefinitions only)",
}
# (chart, dotted path) -> reason: keys the chart's templates read though its values.yaml does
# not list them.
EXTRA_KEYS: dict[tuple[str, str], str] = {}
# (chart, dotted path of the image map) -> reason we pin another image than the chart's.
IMAGE_OVERRIDES: dict[tuple[str, str], str] = {}
KUBERNETES_TYPED = frozenset({
    "resources", "affinity", "securityContext", "podSecurityContext",
    "containerSecurityContext", "nodeSelector", "tolerations", "topologySpreadConstraints",
})


def releases(r: Rendered) -> list[Resource]:
    return [x for x in r.resources if x.type == "kubernetes:helm.sh/v3:Release"]


def chart_defaults(chart: str, version: str) -> tuple[dict[str, Any] | None, dict[str, Path]]:
    """The chart's values with its subcharts' values merged under their keys (None when the
    chart's own file is missing), and the subcharts whose values file is missing, by key."""
    path = upstream_file(chart, version, "values.yaml")
    if not path.exists():
        return None, {}
    values = dict(load_yaml(path) or {})
    missing: dict[str, Path] = {}
    meta_path = upstream_file(chart, version, "Chart.yaml")
    meta = load_yaml(meta_path) if meta_path.exists() else {}
    for dep in (meta or {}).get("dependencies") or []:
        key = dep.get("alias") or dep["name"]
        sub_path = upstream_file(dep["name"], str(dep.get("version")), "values.yaml")
        if sub_path.exists():
            values[key] = _merge(load_yaml(sub_path) or {}, values.get(key) or {})
        else:  # an error only if our values reach into that block (see _unknown_keys)
            missing[key] = sub_path
    return values, missing


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return over if over is not None else base


def _unknown_keys(chart: str, ours: Any, theirs: Any, path: str,
                  missing: dict[str, Path]) -> Iterator[str]:
    if not isinstance(ours, dict) or theirs is None or theirs == {}:
        return
    if not isinstance(theirs, dict):
        yield f"{path}: the chart's default is a {type(theirs).__name__}, we set a map"
        return
    for key, value in ours.items():
        where = f"{path}.{key}" if path else key
        if not path and key in missing and value:
            yield (f"{where}: subchart values file {missing[key]} is missing (add it to "
                   f"../shared/upstream, see SOURCES.md)")
            continue
        if key not in theirs:
            if (chart, where) not in EXTRA_KEYS:
                yield f"{where}: the chart has no such key"
            continue
        if key in KUBERNETES_TYPED:
            continue
        yield from _unknown_keys(chart, value, theirs[key], where, missing)


def _images(values: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(values, dict):
        if "repository" in values and ("tag" in values or "digest" in values):
            yield path, values
        for k, v in values.items():
            yield from _images(v, f"{path}.{k}" if path else k)


def _at(values: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(values, dict):
            return None
        values = values.get(part)
    return values


def check_release(release: Resource) -> tuple[list[str], int]:
    """Problems of one release, and how many pinned images were compared with the chart's."""
    inputs = release.inputs
    chart, version = chart_name(str(inputs["chart"])), str(inputs.get("version", ""))
    label = f"release {inputs.get('name', release.name)} ({chart} {version})"
    expected = upstream_file(chart, version, "values.yaml")
    theirs, missing = chart_defaults(chart, version)
    if theirs is None:
        if chart in NO_VALUES_FILE:
            return [], 0
        return [f"{label}: no upstream values file {expected}: add the chart's values.yaml "
                f"there (SOURCES.md naming), or list {chart!r} in NO_VALUES_FILE with the "
                f"reason"], 0
    ours = inputs.get("values") or {}
    problems = [f"{label}: values.{p}" for p in _unknown_keys(chart, ours, theirs, "", missing)]
    compared = 0
    for path, image in _images(ours):
        pinned = _at(theirs, path)
        if not (isinstance(pinned, dict) and (pinned.get("tag") or pinned.get("digest"))):
            continue  # the chart pins no image here (e.g. tag defaults to appVersion)
        compared += 1
        for field in ("repository", "tag", "digest"):
            differs = field in image and pinned.get(field) and image[field] != pinned[field]
            if differs and (chart, path) not in IMAGE_OVERRIDES:
                problems.append(
                    f"{label}: values.{path}.{field} is {image[field]!r} but the chart pins "
                    f"{pinned[field]!r} ({expected.name}); pin the chart's, or list the path "
                    f"in IMAGE_OVERRIDES with the reason"
                )
    return problems, compared


@pytest.mark.parametrize("stack", STACKS)
def test_every_release_sets_only_keys_its_chart_has(stack: str, rendered: Render) -> None:
    found = releases(rendered(stack))
    assert found, "no Helm releases rendered"
    problems = [p for r in found for p in check_release(r)[0]]
    assert not problems, "\n".join(problems)


def test_pinned_images_are_compared_with_the_charts(rendered: Render) -> None:
    # Not vacuous: the Karpenter controller image (pinned by digest) is among the compared.
    assert sum(check_release(r)[1] for r in releases(rendered("prod"))) >= 1


# ------------------------------------------------------------------------ planted regressions
def _release(chart: str, version: str, values: dict[str, Any]) -> Resource:
    return Resource(type="kubernetes:helm.sh/v3:Release", name="r", urn="urn:r", parent="",
                    custom=True, inputs={"name": "r", "chart": chart, "version": version,
                                         "values": values})


def test_a_misspelt_key_a_stale_digest_and_a_missing_file_are_caught() -> None:
    karpenter = "oci://public.ecr.aws/karpenter/karpenter"
    problems, _ = check_release(_release(karpenter, "1.14.1", {
        "settings": {"interruptionQueueName": "q"},  # the key is interruptionQueue
        "podAnnotations": {"free": "form"},  # default {}: free keys
        "controller": {"image": {"repository": "public.ecr.aws/karpenter/controller",
                                 "tag": "1.14.1", "digest": "sha256:" + "0" * 64}},
    }))
    text = "\n".join(problems)
    assert "values.settings.interruptionQueueName: the chart has no such key" in text
    assert "values.controller.image.digest" in text and "podAnnotations" not in text
    missing, _ = check_release(_release("some-chart", "9.9.9", {"a": 1}))
    assert missing and "some-chart-9.9.9_values.yaml" in missing[0]


def test_upstream_values_files_are_present() -> None:
    path = upstream_file("karpenter", "1.14.1", "values.yaml")
    assert Path(path).exists(), f"missing {path}: see ../shared/upstream/SOURCES.md"


def test_a_misspelt_key_in_a_subchart_block_is_caught() -> None:
    # kube-prometheus-stack's grafana and kube-state-metrics blocks are checked against their
    # own charts' values.yaml (Chart.yaml dependencies), not only the parent's few defaults.
    problems, _ = check_release(_release("kube-prometheus-stack", "88.5.3", {
        "grafana": {"sidecar": {"dashboards": {"folderAnnotations": "x",  # folderAnnotation
                                               "provider": {"foldersFromFilesStructure": True}}}},
        "kube-state-metrics": {"metricLabelAllowlist": [],  # metricLabelsAllowlist
                               "metricLabelsAllowlist": []},
    }))
    text = "\n".join(problems)
    assert "values.grafana.sidecar.dashboards.folderAnnotations: the chart has no such key" in text
    assert "values.kube-state-metrics.metricLabelAllowlist: the chart has no such key" in text
    assert len(problems) == 2, problems
