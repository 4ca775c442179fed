"""DAVIS region (J) and contour (F) measures and their per-object statistics.

Every function reproduces the official davis2017-evaluation definition bit for bit (see
docs METRICS.md): the same boundary map, the same disk, the same float64 operations in the
same order. The speed comes only from skipping pixels that cannot change a count: boundary
maps are computed on the object's bounding box, and the disk matches on the bounding box
of the two boundary maps (outside it both maps are zero, and cv2.dilate pads with zeros), deciding
most pixels by a square inside the disk and the rest exactly by the disk's rectangles.
`frame_scores` counts the pixels with the compiled kernel (stg/metrics/_kernels.c) when it is built, and with
the numpy code here when it is not; both give the same counts, and every float operation is done here.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

try:
    from stg.metrics import _kernels
except ImportError:  # built without a C compiler: the numpy path below gives the same counts
    _kernels = None

BOUND_TH = 0.008
KERNEL_MAX_RADIUS = 250  # the kernel's row distances are bytes
KERNEL_MAX_OBJECTS = 254
DECAY_BINS = 4


def tolerance_radius(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Radius in pixels within which a boundary pixel counts as matched (8 at 854x480)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.sqrt(height * height + width * width)))


@lru_cache(maxsize=16)
def disk(radius: int) -> np.ndarray:
    """The disk structuring element of skimage.morphology.disk: x^2 + y^2 <= r^2, as uint8."""
    offsets = np.arange(-radius, radius + 1)
    xs, ys = np.meshgrid(offsets, offsets)
    kernel = ((xs * xs + ys * ys) <= radius * radius).astype(np.uint8)
    kernel.setflags(write=False)
    return kernel


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary map of a binary mask, exactly as the official `_seg2bmap`.

    A pixel is a boundary pixel when its 2x2 block (itself, right, below, below-right) is not
    constant; on the last row only the right neighbour counts, on the last column only the
    one below, and the bottom-right pixel is never a boundary.
    """
    seg = np.asarray(mask).astype(bool, copy=False)
    if seg.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {seg.shape}")
    bmap = np.zeros(seg.shape, dtype=bool)
    if seg.size == 0:
        return bmap
    top_left = seg[:-1, :-1]
    bmap[:-1, :-1] = (top_left ^ seg[:-1, 1:]) | (top_left ^ seg[1:, :-1]) | (top_left ^ seg[1:, 1:])
    bmap[-1, :-1] = seg[-1, :-1] ^ seg[-1, 1:]
    bmap[:-1, -1] = seg[:-1, -1] ^ seg[1:, -1]
    bmap[-1, -1] = False
    return bmap


@dataclass(frozen=True)
class Boundary:
    """A boundary map cropped to where it can be nonzero, placed at (top, left) in the image."""

    bmap: np.ndarray
    top: int
    left: int
    count: int

    @property
    def bottom(self) -> int:
        return self.top + self.bmap.shape[0]

    @property
    def right(self) -> int:
        return self.left + self.bmap.shape[1]


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the nonzero pixels (bottom/right exclusive), None when empty."""
    import cv2  # lazily: with the compiled kernel `stg metrics` never needs OpenCV

    view = mask.view(np.uint8) if mask.dtype == bool else mask
    left, top, width, height = cv2.boundingRect(np.ascontiguousarray(view))
    if width == 0 or height == 0:
        return None
    return top, top + height, left, left + width


def boundary(mask: np.ndarray, box: tuple[int, int, int, int] | None = None) -> Boundary | None:
    """Boundary map of a mask restricted to its bounding box grown by one pixel; None when empty.

    The boundary of pixel (i, j) only looks at rows i..i+1 and columns j..j+1, so outside the
    box grown by one row/column toward the origin it is zero. The crop also keeps one extra
    (all-zero) row and column after the box when the image has them, so that the zero fill
    of `seg2bmap` at the crop's far edges equals the image's true zero neighbours.
    """
    if box is None:
        box = bounding_box(mask)
        if box is None:
            return None
    height, width = mask.shape
    top, bottom, left, right = box
    top, left = max(top - 1, 0), max(left - 1, 0)
    bottom, right = min(bottom + 1, height), min(right + 1, width)
    bmap = seg2bmap(mask[top:bottom, left:right])
    return Boundary(bmap, top, left, int(np.count_nonzero(bmap)))


def _apart(gt: Boundary, res: Boundary, radius: int) -> bool:
    """True when no pixel of one crop lies within the radius of the other's (no match possible)."""
    return (gt.top - radius >= res.bottom or res.top - radius >= gt.bottom
            or gt.left - radius >= res.right or res.left - radius >= gt.right)


@lru_cache(maxsize=16)
def disk_rectangles(radius: int) -> tuple[int, tuple[tuple[int, int], ...]]:
    """(half-side of the largest square inside the disk, the (half-width, half-height) rectangles whose union
    is the disk exactly): for each row offset dy the disk spans |dx| <= isqrt(r^2 - dy^2), so it is the union
    of those rows' rectangles, keeping the tallest one per width."""
    tallest: dict[int, int] = {}
    for dy in range(radius + 1):
        tallest[math.isqrt(radius * radius - dy * dy)] = dy
    return math.isqrt(radius * radius // 2), tuple(sorted(tallest.items()))


def _window(boundary: Boundary, top: int, left: int, shape: tuple[int, int]) -> np.ndarray:
    """The boundary map placed in a zero window of `shape` whose corner is (top, left) in the image."""
    window = np.zeros(shape, dtype=np.uint8)
    window[boundary.top - top:boundary.bottom - top, boundary.left - left:boundary.right - left] = boundary.bmap
    return window


def _near_count(source: np.ndarray, target: np.ndarray, radius: int) -> int:
    """Target pixels within the disk of some source pixel, i.e. count(target & dilate(source, disk)).

    The disk dilation itself is the slow part of F (about 225 kernel taps per pixel), so most pixels are
    decided by a square inside the disk (a separable rectangle dilation); only the target pixels it misses
    are tested exactly, each against the disk's rectangles by box sums of an integral image.
    """
    import cv2

    inner, rectangles = disk_rectangles(radius)
    near = cv2.dilate(source, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * inner + 1, 2 * inner + 1)))
    count = int(np.count_nonzero(cv2.bitwise_and(target, near)))
    missed = cv2.findNonZero(np.greater(target, near).view(np.uint8))
    if missed is None:
        return count
    height, width = source.shape
    sums = cv2.integral(cv2.copyMakeBorder(source, radius, radius + 1, radius, radius + 1, cv2.BORDER_CONSTANT,
                                           value=0), sdepth=cv2.CV_32S).ravel()
    stride = width + 2 * radius + 2
    points = missed.reshape(-1, 2).astype(np.int64)
    flat = (points[:, 1] + radius) * stride + points[:, 0] + radius
    found = np.zeros(len(flat), dtype=bool)
    for half_width, half_height in rectangles:
        above, below = -half_height * stride, (half_height + 1) * stride
        found |= (sums[flat + below + half_width + 1] - sums[flat + above + half_width + 1]
                  - sums[flat + below - half_width] + sums[flat + above - half_width]) > 0
    return count + int(np.count_nonzero(found))


def matched_counts(gt: Boundary, res: Boundary, radius: int) -> tuple[int, int]:
    """(result boundary pixels near the GT boundary, GT boundary pixels near the result boundary).

    Both maps are placed in the window covering both crops; pixels outside it are zero in both maps,
    so they neither match nor feed a dilation that reaches inside (cv2.dilate pads with zeros too).
    """
    if _apart(gt, res, radius):
        return 0, 0
    top, left = min(gt.top, res.top), min(gt.left, res.left)
    shape = (max(gt.bottom, res.bottom) - top, max(gt.right, res.right) - left)
    gt_window, res_window = _window(gt, top, left, shape), _window(res, top, left, shape)
    return _near_count(gt_window, res_window, radius), _near_count(res_window, gt_window, radius)


def precision_recall(gt: Boundary | None, res: Boundary | None, radius: int) -> tuple[float, float]:
    """Boundary precision and recall, with the official rules when a boundary is empty."""
    n_gt = 0 if gt is None else gt.count
    n_res = 0 if res is None else res.count
    if n_gt == 0 or n_res == 0:
        return precision_recall_from_counts(n_gt, n_res, 0, 0)
    assert gt is not None and res is not None
    return precision_recall_from_counts(n_gt, n_res, *matched_counts(gt, res, radius))


def precision_recall_from_counts(n_gt: int, n_res: int, res_matched: int, gt_matched: int) -> tuple[float, float]:
    """Precision and recall from boundary pixel counts, with the official rules when a boundary is empty."""
    if n_res == 0 and n_gt > 0:
        return 1.0, 0.0
    if n_res > 0 and n_gt == 0:
        return 0.0, 1.0
    if n_res == 0 and n_gt == 0:
        return 1.0, 1.0
    return res_matched / float(n_res), gt_matched / float(n_gt)


def f_from_boundaries(gt: Boundary | None, res: Boundary | None, radius: int) -> float:
    """Contour F from the two boundary maps."""
    return f_from_precision_recall(*precision_recall(gt, res, radius))


def f_from_precision_recall(precision: float, recall: float) -> float:
    """Harmonic mean, 0 when both are 0 (same operation order as the official code)."""
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def f_measure(gt_mask: np.ndarray, res_mask: np.ndarray, radius: int | None = None) -> float:
    """Contour accuracy F of one object in one frame (binary masks of the same shape)."""
    if gt_mask.shape != res_mask.shape:
        raise ValueError(f"mask shapes differ: {gt_mask.shape} vs {res_mask.shape}")
    if radius is None:
        radius = tolerance_radius(*gt_mask.shape)
    gt = np.ascontiguousarray(gt_mask, dtype=bool)
    res = np.ascontiguousarray(res_mask, dtype=bool)
    return f_from_boundaries(boundary(gt), boundary(res), radius)


def jaccard(gt_mask: np.ndarray, res_mask: np.ndarray) -> float:
    """Region similarity J = |G and R| / |G or R| of one object; 1 when both are empty."""
    if gt_mask.shape != res_mask.shape:
        raise ValueError(f"mask shapes differ: {gt_mask.shape} vs {res_mask.shape}")
    gt = np.asarray(gt_mask, dtype=bool)
    res = np.asarray(res_mask, dtype=bool)
    inter = int(np.count_nonzero(gt & res))
    union = int(np.count_nonzero(gt | res))
    return jaccard_from_counts(inter, union)


def jaccard_from_counts(inter: int, union: int) -> float:
    """J from pixel counts; an empty union scores 1 as in the official code."""
    if union == 0:
        return 1.0
    return inter / union


def _intersection_count(gt: np.ndarray, res: np.ndarray, gt_box: tuple[int, int, int, int],
                        res_box: tuple[int, int, int, int]) -> int:
    """|G and R| counted only on the overlap of the two bounding boxes."""
    top, bottom = max(gt_box[0], res_box[0]), min(gt_box[1], res_box[1])
    left, right = max(gt_box[2], res_box[2]), min(gt_box[3], res_box[3])
    if top >= bottom or left >= right:
        return 0
    return int(np.count_nonzero(gt[top:bottom, left:right] & res[top:bottom, left:right]))


def _area(mask: np.ndarray, box: tuple[int, int, int, int] | None) -> int:
    if box is None:
        return 0
    return int(np.count_nonzero(mask[box[0]:box[1], box[2]:box[3]]))


def object_scores(gt: np.ndarray, res: np.ndarray, radius: int) -> tuple[float, float]:
    """(J, F) of one object from its two boolean masks, each pixel op limited to bounding boxes."""
    gt_box, res_box = bounding_box(gt), bounding_box(res)
    inter = 0 if gt_box is None or res_box is None else _intersection_count(gt, res, gt_box, res_box)
    union = _area(gt, gt_box) + _area(res, res_box) - inter
    j = jaccard_from_counts(inter, union)
    gt_boundary = None if gt_box is None else boundary(gt, gt_box)
    res_boundary = None if res_box is None else boundary(res, res_box)
    return j, f_from_boundaries(gt_boundary, res_boundary, radius)


def frame_scores(gt_labels: np.ndarray, res_labels: np.ndarray, num_objects: int,
                 radius: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """J and F of objects 1..K in one frame, from label maps (GT void already set to 0).

    Labels above K in the GT are not any object (the official one-hot over 1..K ignores them).
    """
    if gt_labels.shape != res_labels.shape:
        raise ValueError(f"label map shapes differ: {gt_labels.shape} vs {res_labels.shape}")
    if radius is None:
        radius = tolerance_radius(*gt_labels.shape)
    if (_kernels is not None and gt_labels.dtype == np.uint8 and res_labels.dtype == np.uint8
            and gt_labels.ndim == 2 and radius <= KERNEL_MAX_RADIUS and num_objects <= KERNEL_MAX_OBJECTS):
        return frame_scores_compiled(gt_labels, res_labels, num_objects, radius)
    return frame_scores_numpy(gt_labels, res_labels, num_objects, radius)


def frame_scores_compiled(gt_labels: np.ndarray, res_labels: np.ndarray, num_objects: int,
                          radius: int) -> tuple[np.ndarray, np.ndarray]:
    """frame_scores with the pixel counts from the compiled kernel (uint8 label maps); needs it built."""
    if _kernels is None:
        raise RuntimeError("stg.metrics._kernels is not built (no C compiler when the package was installed)")
    height, width = gt_labels.shape
    counts = _kernels.object_counts(np.ascontiguousarray(gt_labels), np.ascontiguousarray(res_labels), width, height,
                                    num_objects, radius)
    return scores_from_counts(counts)


def scores_from_counts(counts: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """J and F of each object from the kernel's pixel counts (intersection, both areas, both boundary counts, both
    matched counts), every division in the official order."""
    j_values = np.empty(len(counts), dtype=np.float64)
    f_values = np.empty(len(counts), dtype=np.float64)
    for index, (inter, gt_area, res_area, n_gt, n_res, res_matched, gt_matched) in enumerate(counts):
        j_values[index] = jaccard_from_counts(inter, gt_area + res_area - inter)
        f_values[index] = f_from_precision_recall(*precision_recall_from_counts(n_gt, n_res, res_matched,
                                                                                gt_matched))
    return j_values, f_values


def frame_scores_numpy(gt_labels: np.ndarray, res_labels: np.ndarray, num_objects: int,
                       radius: int) -> tuple[np.ndarray, np.ndarray]:
    """frame_scores in numpy and OpenCV, one object at a time on its bounding boxes."""
    j_values = np.empty(num_objects, dtype=np.float64)
    f_values = np.empty(num_objects, dtype=np.float64)
    for index in range(num_objects):
        label = index + 1
        j_values[index], f_values[index] = object_scores(gt_labels == label, res_labels == label, radius)
    return j_values, f_values


def decay_bin_ids(n: int) -> np.ndarray:
    """Bin edges of the decay: round(linspace(1, n, 5) + 1e-10) - 1 as int64 (not uint8)."""
    return (np.round(np.linspace(1, n, DECAY_BINS + 1) + 1e-10) - 1).astype(np.int64)


def db_statistics(per_frame: np.ndarray) -> tuple[float, float, float]:
    """(Mean, Recall, Decay) of one object's per-frame values, as the official `db_statistics`."""
    values = np.ascontiguousarray(per_frame, dtype=np.float64)  # the official code gets a contiguous row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(values)
        recall = np.nanmean(values > 0.5)
        ids = decay_bin_ids(len(values))
        bins = [values[ids[i]:ids[i + 1] + 1] for i in range(DECAY_BINS)]
        decay = np.nanmean(bins[0]) - np.nanmean(bins[-1])
    return float(mean), float(recall), float(decay)
