"""The interface every proposal segmentation backend implements."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class SegmentBackend(Protocol):
    """One soft mask per box, from the frame and the box's prior Q.

    `planes` holds the distinct priors of the frame (M, H, W) float32 in [0, 1] and `plane_of_box[n]`
    says which plane is box n's Q, so the class-agnostic union prior is stored once, not once per box.
    """

    name: str

    def identity(self) -> dict[str, Any]:
        """Settings and weights identity, recorded in the store's attributes."""
        ...

    def segment(self, image: np.ndarray, boxes: np.ndarray, planes: np.ndarray, plane_of_box: np.ndarray
                ) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame, (N, 4) xyxy boxes -> (N, H, W) uint8 probabilities 0..255 in the full frame."""
        ...
