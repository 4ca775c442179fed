"""CNN feature extractors for the graph stage: node vectors X_v (Eq. 3) and key maps K_r (Eq. 7)."""

from stg.features.backends import make_features_backend
from stg.features.base import FeatureBackend, imagenet_batch

__all__ = ["FeatureBackend", "imagenet_batch", "make_features_backend"]
