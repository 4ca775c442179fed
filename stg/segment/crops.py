"""The segmenter's view of a proposal: an RGB + Q crop resized to the network's input, and the way back.

Training (stg/train/segmenter.py) and inference build inputs with these same functions, so the network
sees at test time exactly the kind of crop it was trained on.
"""

from __future__ import annotations

import cv2
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def crop_input(image: np.ndarray, prior: np.ndarray, region: tuple[int, int, int, int], size: int) -> np.ndarray:
    """(4, S, S) float32: the ImageNet-normalised RGB crop and the prior Q (0..1) of `region`, resized to S x S."""
    left, top, right, bottom = region
    rgb = cv2.resize(image[top:bottom, left:right], (size, size), interpolation=cv2.INTER_LINEAR)
    q = cv2.resize(prior[top:bottom, left:right].astype(np.float32, copy=False), (size, size),
                   interpolation=cv2.INTER_LINEAR)
    normalised = (rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.concatenate([normalised.transpose(2, 0, 1), q[None]]).astype(np.float32, copy=False)


def crop_target(mask: np.ndarray, region: tuple[int, int, int, int], size: int) -> np.ndarray:
    """(S, S) float32 binary target: the mask's crop resized like the input (bilinear, then >= 0.5)."""
    left, top, right, bottom = region
    resized = cv2.resize(mask[top:bottom, left:right].astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    return (resized >= 0.5).astype(np.float32)


def paste_probabilities(probabilities: np.ndarray, region: tuple[int, int, int, int], height: int, width: int
                        ) -> np.ndarray:
    """(H, W) float32: an S x S probability map resized back onto its region of an empty frame."""
    left, top, right, bottom = region
    frame = np.zeros((height, width), dtype=np.float32)
    if right > left and bottom > top:
        frame[top:bottom, left:right] = cv2.resize(probabilities.astype(np.float32), (right - left, bottom - top),
                                                   interpolation=cv2.INTER_LINEAR)
    return frame
