"""The interface every features backend implements, and the shared ImageNet preprocessing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureBackend(Protocol):
    """Node vectors for the spatial graph and key maps for the temporal graph, from RGB crops."""

    name: str
    device: torch.device

    def node_features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 crops of any sizes -> (N, C) float32 vectors (the proposals' X_v)."""
        ...

    def key_maps(self, crops: np.ndarray) -> torch.Tensor:
        """(N, H1, W1, 3) uint8 RGB crops -> (N, C, h, w) float32 key maps on the backend's device."""
        ...

    def identity(self) -> dict[str, Any]:
        """Model, layers and weights identity, recorded in the graph store."""
        ...


def imagenet_batch(crops: Sequence[np.ndarray], size: tuple[int, int] | None, device: torch.device) -> torch.Tensor:
    """RGB uint8 crops -> (N, 3, H, W) float32 normalised with the ImageNet mean and std.

    `size` (height, width) resizes every crop with cv2's bilinear filter (as deep-sort's embedder does);
    None requires the crops to share one size already.
    """
    if len(crops) == 0:
        raise ValueError("no crops to embed")
    images = [c if size is None or c.shape[:2] == tuple(size) else cv2.resize(c, (size[1], size[0]))
              for c in crops]
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(images))).to(device)
    batch = batch.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return (batch - mean) / std
