"""Detection backend registry: settings dict -> backend object, checked at job start."""

from __future__ import annotations

import inspect
from typing import Any

from stg.detect.base import DetectBackend
from stg.errors import InputError

BACKENDS = ("motion", "torchvision", "mmdet")


def _build(cls: type, options: dict[str, Any], setting: str) -> Any:
    """Construct a backend, naming any setting it does not take (the schema catches these in the workflow)."""
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InputError(setting, f"unknown setting(s) {', '.join(unknown)} (accepted: {', '.join(sorted(accepted))})")
    return cls(**options)


def make_detect_backend(settings: dict[str, Any]) -> DetectBackend:
    """Build the configured backend; settings, devices and checkpoints are checked here."""
    backend = settings.get("backend", "motion")
    options = dict(settings.get(backend, {}) or {})
    device = settings.get("device", "auto")
    if backend == "motion":
        from stg.detect.motion import MotionDetect

        return _build(MotionDetect, options, "stages.detect.motion")
    if backend == "torchvision":
        from stg.detect.rcnn import TorchvisionDetect

        return _build(TorchvisionDetect, {**options, "device": device}, "stages.detect.torchvision")
    if backend == "mmdet":
        from stg.detect.mmdet_backend import MmdetDetect

        return _build(MmdetDetect, {**options, "device": device}, "stages.detect.mmdet")
    raise InputError("stages.detect.backend", f"unknown detect backend '{backend}' (expected {', '.join(BACKENDS)})")
