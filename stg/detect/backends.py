"""Detection backend registry: name -> backend class (see stg.registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stg.registry import Backend, build_backend

if TYPE_CHECKING:
    from stg.detect.base import DetectBackend

BACKENDS = {
    "motion": Backend("stg.detect.motion:MotionDetect"),
    "torchvision": Backend("stg.detect.rcnn:TorchvisionDetect", device=True),
    "mmdet": Backend("stg.detect.mmdet_backend:MmdetDetect", device=True),
}


def make_detect_backend(settings: dict[str, Any], device: str | None = None) -> DetectBackend:
    """Build the configured backend; settings, devices and checkpoints are checked here, at job start."""
    return build_backend("detect", "detect", BACKENDS, settings, device)
