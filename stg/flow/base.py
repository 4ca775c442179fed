"""The interface every optical flow backend implements."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class FlowBackend(Protocol):
    """Dense flow between frame pairs.

    Convention: ``flow(sources, targets)[b]`` maps a pixel x of ``sources[b]`` to
    x + f(x) in ``targets[b]``; f[..., 0] is the x (column) displacement, f[..., 1] the y (row).
    """

    name: str
    batch_size: int  # frame pairs per call (the flow stage's batches)

    def identity(self) -> dict[str, Any]:
        """Settings and weights identity, recorded in the store's attributes."""
        ...

    def flow(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 RGB pairs -> (B, H, W, 2) float32 flow from source to target."""
        ...
