"""The interface every detection backend implements, and the per-frame result it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

# What a backend reads: the video's RGB frames, the warp stage's per-object priors Q, or both (a union).
FRAMES = "frames"
PRIORS = "priors"
FRAMES_AND_PRIORS = "frames+priors"


@dataclass(frozen=True)
class Detections:
    """One frame's proposals: boxes (N, 4) float32 xyxy in pixels, scores (N,) float32, optional masks.

    Boxes use pixel-edge coordinates: a box covering columns 3..5 is x1 = 3, x2 = 6.
    `masks` (N, H, W) uint8 are instance-mask probabilities 0..255 when the backend makes them.
    """

    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.boxes.ndim != 2 or self.boxes.shape[1] != 4 or self.scores.shape != (len(self.boxes),):
            raise ValueError(f"boxes {self.boxes.shape} and scores {self.scores.shape} do not describe N boxes")
        if self.masks is not None and len(self.masks) != len(self.boxes):
            raise ValueError(f"{len(self.masks)} masks for {len(self.boxes)} boxes")

    @staticmethod
    def empty(with_masks: bool = False, size: tuple[int, int] = (0, 0)) -> Detections:
        masks = np.zeros((0, *size), dtype=np.uint8) if with_masks else None
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), masks)

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class DetectBatch:
    """Consecutive frames of one video; `images` or `priors` is filled as the backend's `reads` asks."""

    video: str
    frames: list[int]
    images: np.ndarray | None = None  # (B, H, W, 3) uint8 RGB
    priors: np.ndarray | None = None  # (B, K, H, W) float32 in [0, 1]


class DetectBackend(Protocol):
    """Frames (or priors) in, class-agnostic proposals out.

    Everything that can fail on configuration (settings, device, checkpoint) fails in the
    constructor, i.e. at job start, before any store exists.
    """

    name: str
    reads: str  # FRAMES, PRIORS or FRAMES_AND_PRIORS
    batch_size: int
    makes_masks: bool

    def identity(self) -> dict[str, Any]:
        """Settings and weights identity, recorded in the store's attributes."""
        ...

    def detect(self, batch: DetectBatch) -> list[Detections]:
        """One Detections per frame of the batch, boxes sorted by decreasing score."""
        ...
