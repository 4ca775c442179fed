"""Crops for the CNNs and the temporal graph: cut a window, resize it, and paste maps back."""

from __future__ import annotations

import cv2
import numpy as np

Window = tuple[int, int, int, int]  # left, top, right, bottom (exclusive), integer pixels


def crop(image: np.ndarray, window: Window) -> np.ndarray:
    left, top, right, bottom = window
    return image[top:bottom, left:right]


def crop_resize(image: np.ndarray, window: Window, size: tuple[int, int], area: bool = False) -> np.ndarray:
    """The window of an image (H, W[, C]) resized to `size` (height, width): bilinear, or area-average."""
    patch = np.ascontiguousarray(crop(image, window))
    if patch.dtype == bool:
        patch = patch.astype(np.float32)
    interpolation = cv2.INTER_AREA if area else cv2.INTER_LINEAR
    return cv2.resize(patch, (size[1], size[0]), interpolation=interpolation)


def paste(values: np.ndarray, window: Window, frame_size: tuple[int, int]) -> np.ndarray:
    """A (h, w) float map resized bilinearly onto its window of an otherwise zero (H, W) frame."""
    left, top, right, bottom = window
    out = np.zeros(frame_size, dtype=np.float32)
    out[top:bottom, left:right] = cv2.resize(np.ascontiguousarray(values, dtype=np.float32),
                                             (right - left, bottom - top), interpolation=cv2.INTER_LINEAR)
    return out
