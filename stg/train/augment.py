"""Random deformations of training samples (pure functions of arrays and a numpy generator).

The segmenter must learn to correct an imperfect prior Q: at test time Q is the previous result
warped by flow, shifted, too fat or thin, with holes, sometimes missing. As in MaskTrack (Perazzi et al.
2017) and Lucid Data Dreaming (Khoreva et al. 2019), the ground truth's Q is deformed so that the
network sees such errors during training.
"""

from __future__ import annotations

import cv2
import numpy as np

from stg.graph.boxes import mask_box as tight_box


def mask_box(mask: np.ndarray, level: float = 0.5) -> np.ndarray | None:
    """xyxy pixel-edge box of mask >= level (stg.graph.boxes.mask_box), or None when empty."""
    box = tight_box(mask >= level)
    return None if np.isnan(box[0]) else box


def jitter_box(box: np.ndarray, rng: np.random.Generator, shift: float, scale: float) -> np.ndarray:
    """The box moved by up to `shift` of its size and each side scaled by up to +-`scale`, as detections err."""
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    cx = (x1 + x2) / 2 + rng.uniform(-shift, shift) * width
    cy = (y1 + y2) / 2 + rng.uniform(-shift, shift) * height
    width *= np.exp(rng.uniform(-scale, scale))
    height *= np.exp(rng.uniform(-scale, scale))
    return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2], dtype=np.float32)


def _affine(mask: np.ndarray, rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    size = max(x2 - x1, y2 - y1)
    centre = ((x1 + x2) / 2, (y1 + y2) / 2)
    matrix = cv2.getRotationMatrix2D(centre, rng.uniform(-12, 12), float(np.exp(rng.uniform(-0.12, 0.12))))
    matrix[:, 2] += rng.uniform(-0.08, 0.08, size=2) * size
    height, width = mask.shape
    return cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)


def _morphology(mask: np.ndarray, rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    size = max(box[2] - box[0], box[3] - box[1])
    radius = int(max(1, rng.uniform(0.01, 0.06) * size))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask, kernel) if rng.random() < 0.5 else cv2.erode(mask, kernel)


def _elastic(mask: np.ndarray, rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    """A smooth random displacement field, strongest along the boundary's scale."""
    height, width = mask.shape
    size = max(box[2] - box[0], box[3] - box[1])
    step = max(8, int(size / 4))
    coarse = rng.normal(0.0, 0.05 * size, size=(2, height // step + 2, width // step + 2)).astype(np.float32)
    dx = cv2.resize(coarse[0], (width, height), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(coarse[1], (width, height), interpolation=cv2.INTER_CUBIC)
    columns, rows = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(mask, columns + dx, rows + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _holes(mask: np.ndarray, rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    out = mask.copy()
    x1, y1, x2, y2 = box
    for _ in range(int(rng.integers(1, 4))):
        centre = (int(rng.uniform(x1, x2)), int(rng.uniform(y1, y2)))
        axes = (int(max(1, rng.uniform(0.05, 0.2) * (x2 - x1))), int(max(1, rng.uniform(0.05, 0.2) * (y2 - y1))))
        cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, 0.0, -1)
    return out


DEFORMATIONS = (_affine, _morphology, _elastic, _holes)


def deform_prior(prior: np.ndarray, rng: np.random.Generator, empty_probability: float = 0.05,
                 clean_probability: float = 0.0, deform_probability: float = 0.5) -> np.ndarray:
    """(H, W) float32 prior in [0, 1]: kept as it is (`clean_probability`), emptied (`empty_probability`), or
    with each of affine / morphology / elastic / holes applied with `deform_probability`."""
    if rng.random() < clean_probability:
        return prior.astype(np.float32, copy=True)
    if rng.random() < empty_probability:
        return np.zeros_like(prior, dtype=np.float32)
    box = mask_box(prior)
    if box is None:
        return prior.astype(np.float32, copy=True)
    out = prior.astype(np.float32, copy=True)
    for deformation in DEFORMATIONS:
        if rng.random() < deform_probability:
            out = deformation(out, rng, box)
    return np.clip(out, 0.0, 1.0)


def colour_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.2) -> np.ndarray:
    """Brightness, contrast and per-channel gain of a uint8 RGB crop."""
    out = image.astype(np.float32)
    mean = out.mean()
    out = (out - mean) * (1 + rng.uniform(-strength, strength)) + mean
    out = out * (1 + rng.uniform(-strength, strength)) * (1 + rng.uniform(-strength / 2, strength / 2, size=3))
    return np.clip(out, 0, 255).astype(np.uint8)
