"""Features backend registry: the graph stage's settings -> backend object (weights checked at job start)."""

from __future__ import annotations

from typing import Any

from stg.errors import InputError
from stg.features.base import FeatureBackend

BACKENDS = ("mobilenet_v2", "resnet")


def make_features_backend(settings: dict[str, Any], device: str = "auto") -> FeatureBackend:
    """`settings` is the graph stage's: `backend` names the features backend, its dict holds its options."""
    backend = settings.get("backend", "mobilenet_v2")
    options = {k: v for k, v in settings.get(backend, {}).items()}
    if backend == "mobilenet_v2":
        from stg.features.mobilenet import MobileNetV2Features

        return MobileNetV2Features(device=device, **options)
    if backend == "resnet":
        from stg.features.resnet import ResNetFeatures

        return ResNetFeatures(device=device, **options)
    raise InputError("stages.graph.backend", f"unknown features backend '{backend}' (expected {' or '.join(BACKENDS)})")
