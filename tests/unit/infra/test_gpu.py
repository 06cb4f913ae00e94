"""Unit tests of infra/platform/gpu.py: the NVIDIA device plugin and DCGM exporter values."""

from __future__ import annotations

from infra import labels
from infra.config.karpenter import KarpenterConfig
from infra.platform.gpu import dcgm_exporter_values, device_plugin_values, needs_device_plugin


def test_gpu_daemonsets_only_on_gpu_nodes_and_scrapeable() -> None:
    for values in (device_plugin_values(), dcgm_exporter_values()):
        assert values["nodeSelector"] == {labels.NODE_CLASS_LABEL: labels.NODE_CLASS_GPU}
        assert labels.GPU_TOLERATION in values["tolerations"]
        assert values["image"]["tag"] and values["image"]["tag"] != "latest"
    assert dcgm_exporter_values()["podLabels"] == {labels.SCRAPE_LABEL: "dcgm-exporter"}


def test_device_plugin_only_where_the_ami_lacks_one() -> None:
    assert not needs_device_plugin("bottlerocket-nvidia")
    assert needs_device_plugin(KarpenterConfig().gpu_ami_family)  # al2023-nvidia, the default
