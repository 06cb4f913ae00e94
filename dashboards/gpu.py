"""Dashboard 4, GPU fleet: every GPU's load, memory, power, heat and errors (DCGM exporter).

DCGM series carry `Hostname` and `gpu`; with the exporter's pod labels enabled, a GPU held by
a Ray pod also carries `ray_io_cluster`, so the cluster filter keeps idle GPUs only under "All".
"""

from __future__ import annotations

from dashboards import metrics as m
from dashboards.filters import CLUSTER, CLUSTER_VAR, MODEL_VAR, vllm
from dashboards.promql import (
    add,
    div,
    func,
    max_by,
    num,
    rate,
    ratio,
    sel,
    sum_by,
)
from dashboards.spec import DashboardSpec, PanelSpec, Query, Variable

NODE_VAR = Variable("node", "GPU node", sel(m.DCGM_GPU_UTIL), "Hostname")
PER_GPU = "{{Hostname}} gpu {{gpu}}"
GPU = ("Hostname", "gpu")


def dcgm(metric: str):
    return sel(metric, regex={CLUSTER: "$cluster", "Hostname": "$node"})


def spec() -> DashboardSpec:
    load = (
        PanelSpec("GPU utilisation", "Share of time a kernel ran on the GPU.",
                  (Query(max_by(dcgm(m.DCGM_GPU_UTIL), *GPU), PER_GPU),), unit="percent"),
        PanelSpec("Tensor core activity", "Share of cycles the tensor pipes were busy "
                  "(what LLM inference uses; utilisation alone overstates it).",
                  (Query(max_by(dcgm(m.DCGM_TENSOR_ACTIVE), *GPU), PER_GPU),),
                  unit="percentunit", max_value=1),
        PanelSpec("GPU memory used", "Framebuffer memory used / (used + free); vLLM reserves "
                  "most of it for the KV cache at start-up, so high is normal.",
                  (Query(div(max_by(dcgm(m.DCGM_FB_USED), *GPU),
                             add(max_by(dcgm(m.DCGM_FB_USED), *GPU),
                                 max_by(dcgm(m.DCGM_FB_FREE), *GPU))), PER_GPU),),
                  unit="percentunit", max_value=1),
        PanelSpec("Power draw", "Board power drawn by each GPU, in watts.",
                  (Query(max_by(dcgm(m.DCGM_POWER), *GPU), PER_GPU),), unit="watt"),
    )
    health = (
        PanelSpec("Temperature", "GPU core and HBM temperature; the GPUTooHot alert fires above "
                  "its bound.",
                  (Query(max_by(dcgm(m.DCGM_GPU_TEMP), *GPU), "core " + PER_GPU),
                   Query(max_by(dcgm(m.DCGM_MEM_TEMP), *GPU), "memory " + PER_GPU)),
                  unit="celsius"),
        PanelSpec("XID errors", "Last XID error code a GPU reported in each interval (0 = none); "
                  "see docs/runbooks.md#gpu-xid-error for the codes that need a drain.",
                  (Query(max_by(func("max_over_time", dcgm(m.DCGM_XID).range("$__rate_interval")),
                                *GPU), PER_GPU),)),
        PanelSpec("Tokens per joule", "Tokens generated per joule of GPU energy (energy "
                  "counter in mJ); 0 when idle.",
                  (Query(ratio(sum_by(rate(vllm(m.VLLM_GENERATION_TOKENS))),
                               div(sum_by(rate(dcgm(m.DCGM_ENERGY))), num(1000))),
                         "tokens/J"),),
                  unit="short"),
    )
    return DashboardSpec(
        uid="gpu-fleet",
        title="GPU fleet",
        about="Per-GPU load, memory, power, temperature and XID errors from the DCGM exporter.",
        variables=(CLUSTER_VAR, MODEL_VAR, NODE_VAR),
        rows=(("Load", load), ("Health and efficiency", health)),
    )
