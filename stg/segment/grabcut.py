"""GrabCut proposals (OpenCV): no weights, CPU only; the default segmenter.

Seeding (GC_INIT_WITH_MASK), on the crop of the box enlarged by `margin`:
- inside the detection box itself (not enlarged): Q >= 0.5 -> probably foreground, else probably background;
- in the margin ring between the box and the enlarged box: definite background. The box is the
  detector's claim of where the object is, so like classic GrabCut's rectangle, what lies outside it
  is background and gives the colour model its background samples;
- nothing outside the crop is looked at, which keeps the cost per proposal independent of the frame size;
- `core_erosion` (default 0.05): the seeds eroded by that fraction of the box's shorter side are
  definite foreground. With probable labels only, GrabCut sometimes collapses to an all-background
  result on textured objects (DAVIS `boat`: J 0.95 of the seeds -> 0.01); a definite core prevents
  that. 0 gives the plain probable-only seeding;
- `max_side` (default 256): larger crops are shrunk to this longer side before GrabCut and the mask
  scaled back (null: full resolution).
Measured on 13 DAVIS 2016 train videos (every 8th frame, ground-truth boxes plus two jittered copies,
DIS + warp priors; mean J per proposal): seeds alone 0.60; probable-only full resolution 0.65 at
2.3 proposals/s; core 0.05 full resolution 0.69 at 2.7/s; core 0.05, max_side 256: 0.67 at 10.6/s.
Degenerate cases never reach OpenCV's assertions (each colour model needs >= 5 samples):
- a box narrower or shorter than `MIN_SIDE` pixels: the seeds themselves (Q >= 0.5 in the box);
- fewer than 5 foreground seeds (the prior misses the box): classic rectangle initialisation, all of
  the box probably foreground, so a box found where the warp lost the object still yields a mask;
- fewer than 5 background samples (box covering the whole crop, e.g. the whole frame): the seeds.
Output probabilities are 0 or 255.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from stg.segment.geometry import box_pixels, crop_region, paste

log = logging.getLogger(__name__)

MIN_SIDE = 4
MIN_SAMPLES = 5  # OpenCV's GMMs have 5 components; k-means needs at least as many samples
SEED_THRESHOLD = 0.5


def seed_labels(prior_crop: np.ndarray, inner: tuple[int, int, int, int], core_erosion: float = 0.0,
                threshold: float = SEED_THRESHOLD) -> np.ndarray:
    """GrabCut labels of a crop: ring GC_BGD, box GC_PR_BGD, box with Q >= threshold GC_PR_FGD.

    `inner` is the box's pixel range in crop coordinates. With `core_erosion` > 0, the seeds eroded by
    that fraction of the box's shorter side become definite foreground (GC_FGD).
    """
    left, top, right, bottom = inner
    labels = np.full(prior_crop.shape, cv2.GC_BGD, dtype=np.uint8)
    box = prior_crop[top:bottom, left:right]
    labels[top:bottom, left:right] = np.where(box >= threshold, cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    radius = int(core_erosion * min(right - left, bottom - top))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
        core = cv2.erode((labels == cv2.GC_PR_FGD).astype(np.uint8), kernel, borderValue=0)
        labels[core > 0] = cv2.GC_FGD
    return labels


def grabcut_crop(image_crop: np.ndarray, labels: np.ndarray, iterations: int, max_side: int | None = None
                 ) -> np.ndarray:
    """Run GrabCut on a BGR crop from initial labels; returns the bool foreground. Seeded RNG: deterministic.

    With `max_side`, a larger crop is shrunk to that longer side first (the cost grows with the pixel
    count) and the result is scaled back with bilinear interpolation, thresholded at 0.5.
    """
    height, width = labels.shape
    scale = 1.0 if not max_side else min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image_crop = cv2.resize(image_crop, size, interpolation=cv2.INTER_AREA)
        labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    cv2.setRNGSeed(0)
    background = np.zeros((1, 65), dtype=np.float64)
    foreground = np.zeros((1, 65), dtype=np.float64)
    labels = labels.copy()
    cv2.grabCut(np.ascontiguousarray(image_crop), labels, None, background, foreground, iterations,
                cv2.GC_INIT_WITH_MASK)
    result = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if scale < 1.0:
        result = cv2.resize(result.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
    return result


def grabcut_box(image_bgr: np.ndarray, box: np.ndarray, prior: np.ndarray, margin: float, iterations: int,
                max_side: int | None = None, core_erosion: float = 0.0) -> tuple[np.ndarray, str]:
    """One proposal: (H, W) uint8 0/255 mask in the full frame, and how it was made (for the stage's stats)."""
    height, width = prior.shape
    region = crop_region(box, margin, height, width)
    left, top, right, bottom = region
    x1, y1, x2, y2 = box_pixels(box, height, width)
    inner = (x1 - left, y1 - top, x2 - left, y2 - top)
    prior_crop = prior[top:bottom, left:right]
    labels = seed_labels(prior_crop, inner, core_erosion)
    seeds = (labels == cv2.GC_PR_FGD) | (labels == cv2.GC_FGD)
    if x2 - x1 < MIN_SIDE or y2 - y1 < MIN_SIDE:
        return paste(seeds.astype(np.uint8) * 255, region, height, width), "tiny_box"
    mode = "grabcut"
    if int(seeds.sum()) < MIN_SAMPLES:
        labels[inner[1]:inner[3], inner[0]:inner[2]] = cv2.GC_PR_FGD  # no core either: nothing is definite
        mode = "rectangle"
    if int((labels == cv2.GC_BGD).sum() + (labels == cv2.GC_PR_BGD).sum()) < MIN_SAMPLES:
        return paste(seeds.astype(np.uint8) * 255, region, height, width), "no_background"
    try:
        foreground = grabcut_crop(image_bgr[top:bottom, left:right], labels, iterations, max_side)
    except cv2.error as error:  # not expected after the checks above; never let one box kill the job
        log.warning("grabcut failed on box %s (%s); using the seeds", box.tolist(), str(error).splitlines()[-1])
        return paste(seeds.astype(np.uint8) * 255, region, height, width), "error"
    return paste(foreground.astype(np.uint8) * 255, region, height, width), mode


@dataclass
class GrabCutSegmenter:
    """Seeded GrabCut per box; `stats` counts how each proposal was made (stored with the results).

    Settings are checked by the config schema (max_side >= 2 * MIN_SIDE there).
    """

    margin: float = 0.15
    iterations: int = 3
    max_side: int | None = 256
    core_erosion: float = 0.05
    name: str = "grabcut"
    stats: Counter = field(default_factory=Counter)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "margin": self.margin, "iterations": self.iterations,
                "max_side": self.max_side, "core_erosion": self.core_erosion, "opencv": cv2.__version__}

    def segment(self, image: np.ndarray, boxes: np.ndarray, planes: np.ndarray, plane_of_box: np.ndarray
                ) -> np.ndarray:
        height, width = image.shape[:2]
        image_bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        masks = np.zeros((len(boxes), height, width), dtype=np.uint8)
        for n, box in enumerate(boxes):
            masks[n], mode = grabcut_box(image_bgr, box, planes[plane_of_box[n]], self.margin, self.iterations,
                                            self.max_side, self.core_erosion)
            self.stats[mode] += 1
        return masks
