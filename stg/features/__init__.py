"""CNN feature extractors for the graph stage: node vectors X_v (Eq. 3) and key maps K_r (Eq. 7).

The names below are imported on first use, so reading the registry (stg.features.backends, e.g. for
Snakemake's GPU test) does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FeatureBackend", "imagenet_batch", "make_features_backend"]


def __getattr__(name: str) -> Any:
    if name in ("FeatureBackend", "imagenet_batch"):
        from stg.features import base

        return getattr(base, name)
    if name == "make_features_backend":
        from stg.features.backends import make_features_backend

        return make_features_backend
    raise AttributeError(f"module 'stg.features' has no attribute '{name}'")
