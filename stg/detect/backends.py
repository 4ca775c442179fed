"""Detection backend registry: name -> backend class (see stg.registry).

`yolox` runs on ONNX Runtime, not torch: it holds a GPU only where ONNX Runtime has its CUDA provider.
`union` is built from its members, each from its own block, and holds a GPU when one of them does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stg.devices import _parse as parse_device
from stg.devices import uses_gpu
from stg.registry import Backend, build_backend
from stg.settings import stage_settings

if TYPE_CHECKING:
    from stg.detect.base import DetectBackend
    from stg.detect.union import UnionDetect

BACKENDS = {
    "motion": Backend("stg.detect.motion:MotionDetect"),
    "torchvision": Backend("stg.detect.rcnn:TorchvisionDetect", device=True),
    "mmdet": Backend("stg.detect.mmdet_backend:MmdetDetect", device=True),
    # device picks the ONNX Runtime provider
    "yolox": Backend("stg.detect.yolox:YoloxDetect", device=True, gpu="stg.detect.backends:yolox_holds_gpu"),
    "union": Backend("stg.detect.union:UnionDetect", build="stg.detect.backends:build_union",
                     gpu="stg.detect.backends:union_holds_gpu"),
}


def make_detect_backend(settings: dict[str, Any], device: str | None = None) -> DetectBackend:
    """Build the configured backend; settings, devices and checkpoints are checked here, at job start."""
    return build_backend("detect", "detect", BACKENDS, settings, device)


def build_union(settings: Mapping[str, Any], device: str | None = None) -> UnionDetect:
    """The union of the backends in `union.backends`, each built from its own block (the schema excludes 'union')."""
    from stg.detect.union import UnionDetect

    union = stage_settings("detect", dict(settings))["union"]
    members = [build_backend("detect", "detect", BACKENDS, {**settings, "backend": name}, device)
               for name in union["backends"]]
    return UnionDetect(members, batch_size=union["batch_size"])


def yolox_holds_gpu(values: Mapping[str, Any], device: str, setting: str) -> bool:
    """ONNX Runtime uses a GPU only through its CUDA provider (onnxruntime-gpu); torch's view does not matter
    except for `auto`, where it tells whether this machine has a GPU at all."""
    kind, _ = parse_device(device, setting)
    if kind == "cpu":
        return False
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return False
    return kind == "cuda" or uses_gpu(device, setting)


def union_holds_gpu(values: Mapping[str, Any], device: str, setting: str) -> bool:
    return any(BACKENDS[name].holds_gpu(values, device, setting) for name in values["union"]["backends"])
