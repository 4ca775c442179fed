"""Pure warping operations on numpy arrays (no I/O)."""

from __future__ import annotations

import cv2
import numpy as np


def sampling_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampling coordinates x + f(x) for cv2.remap."""
    height, width = flow.shape[:2]
    columns, rows = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return columns + flow[..., 0].astype(np.float32), rows + flow[..., 1].astype(np.float32)


def backward_warp(values: np.ndarray, flow_to_source: np.ndarray) -> np.ndarray:
    """Backward warping with bilinear sampling: out(x) = values(x + f(x)); outside the frame is 0.

    `values` is (K, H, W) or (H, W); `flow_to_source` maps pixels of the target frame into the
    frame `values` lives in (for Q_t from Q_{t-1}: the backward flow t -> t-1).
    """
    map_x, map_y = sampling_grid(flow_to_source)
    planes = values[None] if values.ndim == 2 else values
    out = np.empty(planes.shape, dtype=np.float32)
    for index, plane in enumerate(planes):
        out[index] = cv2.remap(plane.astype(np.float32, copy=False), map_x, map_y, cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out[0] if values.ndim == 2 else out


def occlusion_mask(flow_to_source: np.ndarray, flow_from_source: np.ndarray, alpha: float = 0.01,
                   beta: float = 0.5) -> np.ndarray:
    """Pixels of the target frame whose flow fails the forward-backward check (Sundaram et al. 2010).

    A pixel x is consistent when b(x) + f(x + b(x)) ~ 0, i.e.
    |b + f'|^2 <= alpha * (|b|^2 + |f'|^2) + beta; pixels mapped outside the source frame are
    occluded too.
    """
    height, width = flow_to_source.shape[:2]
    backward = flow_to_source.astype(np.float32)
    map_x, map_y = sampling_grid(backward)
    forward_at = np.stack([
        cv2.remap(flow_from_source[..., channel].astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REPLICATE)
        for channel in range(2)
    ], axis=-1)
    difference = np.sum((backward + forward_at) ** 2, axis=-1)
    bound = alpha * (np.sum(backward**2, axis=-1) + np.sum(forward_at**2, axis=-1)) + beta
    outside = (map_x < 0) | (map_x > width - 1) | (map_y < 0) | (map_y > height - 1)
    return (difference > bound) | outside


def one_hot(labels: np.ndarray, num_objects: int) -> np.ndarray:
    """(K, H, W) float32 masks of objects 1..K; void (255) and background are 0 everywhere."""
    return (labels[None] == np.arange(1, num_objects + 1, dtype=labels.dtype)[:, None, None]).astype(np.float32)


def apply_seed(priors: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """(K, H, W) priors with the objects that `seed` (a label map: read_seed_mask) starts set to their seed masks.

    A late object's prior is empty before its start frame and its seed mask at it; where a starting object is
    seeded, the other objects' priors are cleared (the seed is ground truth there). Void and background pixels of
    the seed leave the priors as they are.
    """
    num_objects = priors.shape[0]
    starting = [int(label) for label in np.unique(seed) if 0 < label <= num_objects]
    if not starting:
        return priors
    seeded = np.isin(seed, starting)
    priors = priors.copy()
    priors[:, seeded] = 0.0
    for label in starting:
        priors[label - 1] = seed == label
    return priors


def seed_starts(seeds: dict[int, np.ndarray], num_objects: int) -> dict[int, int]:
    """Object id -> the first frame whose seed holds it, from a seed schedule (stg.datasets.seed_schedule)."""
    starts: dict[int, int] = {}
    for frame in sorted(seeds):
        for label in np.unique(seeds[frame]):
            if 0 < label <= num_objects:
                starts.setdefault(int(label), frame)
    return dict(sorted(starts.items()))


def priors_to_labels(priors: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Arg-max label map of (K, H, W) priors in [0, 1]; background where every prior is below threshold."""
    if priors.shape[0] == 0:
        return np.zeros(priors.shape[1:], dtype=np.uint8)
    best = np.argmax(priors, axis=0)
    strongest = np.take_along_axis(priors, best[None], axis=0)[0]
    return np.where(strongest >= threshold, best + 1, 0).astype(np.uint8)


def quantise(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] -> uint8 0..255, the stores' probability encoding."""
    return np.clip(np.rint(probabilities * 255.0), 0, 255).astype(np.uint8)


def dequantise(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32) / 255.0
