"""Features backend registry (the graph stage's `backend`): name -> backend class (see stg.registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stg.registry import Backend, build_backend

if TYPE_CHECKING:
    from stg.features.base import FeatureBackend

BACKENDS = {
    "mobilenet_v2": Backend("stg.features.mobilenet:MobileNetV2Features", device=True),
    "resnet": Backend("stg.features.resnet:ResNetFeatures", device=True),
}


def make_features_backend(settings: dict[str, Any], device: str | None = None) -> FeatureBackend:
    """`settings` is the graph stage's: `backend` names the features backend, its dict holds its options."""
    return build_backend("graph", "features", BACKENDS, settings, device)
