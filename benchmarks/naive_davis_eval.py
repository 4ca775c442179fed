"""A plain, one-frame-at-a-time DAVIS evaluator: the reference that tests and benchmarks compare with.

It follows the official davis2017-evaluation code line by line (full-image boundary maps with
shifted copies, full-image disk dilation, PNGs re-read for every object) and shares no code
with `stg.metrics`, so that agreement between the two means something. It needs scipy (and
uses skimage's disk when installed); it is slow on purpose.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image


def official_disk(radius: int) -> np.ndarray:
    """skimage.morphology.disk when available (as the official code), else the same formula."""
    try:
        from skimage.morphology import disk
    except ImportError:
        grid = np.arange(-radius, radius + 1)
        xs, ys = np.meshgrid(grid, grid)
        return (xs ** 2 + ys ** 2 <= radius ** 2).astype(np.uint8)
    return disk(radius).astype(np.uint8)


def official_seg2bmap(seg: np.ndarray) -> np.ndarray:
    """The official `_seg2bmap` (width/height equal to the mask's)."""
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def dilate(bmap: np.ndarray, radius: int, method: str) -> np.ndarray:
    """Disk dilation: "scipy" (binary_dilation, zero border) or "cv2" (what the official code calls)."""
    kernel = official_disk(radius)
    if method == "scipy":
        from scipy.ndimage import binary_dilation

        return binary_dilation(bmap, structure=kernel.astype(bool))
    import cv2

    return cv2.dilate(bmap.astype(np.uint8), kernel)


def naive_f(gt: np.ndarray, res: np.ndarray, method: str = "scipy", bound_th: float = 0.008) -> float:
    """Official `f_measure` with void=None."""
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(res.shape))
    radius = int(bound_pix)
    fg_boundary = official_seg2bmap(res)
    gt_boundary = official_seg2bmap(gt)
    fg_dil = dilate(fg_boundary, radius, method)
    gt_dil = dilate(gt_boundary, radius, method)
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg = np.sum(fg_boundary)
    n_gt = np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def naive_j(gt: np.ndarray, res: np.ndarray) -> float:
    """Official `db_eval_iou` with void=None."""
    gt, res = gt.astype(bool), res.astype(bool)
    inters = np.sum(res & gt)
    union = np.sum(res | gt)
    return 1.0 if np.isclose(union, 0) else float(inters / union)


def naive_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """Official `db_statistics`, with the decay bin ids kept as int64 instead of uint8."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(values)
        recall = np.nanmean(values > 0.5)
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return float(mean), float(recall), float(decay)


def list_sequences(root: Path, split: str) -> tuple[str, list[tuple[str, list[Path]]]]:
    """(layout, [(sequence, its annotation paths in order)]) from the split file."""
    split_2017 = root / "ImageSets" / "2017" / f"{split}.txt"
    if split_2017.is_file():
        names = [line.strip() for line in split_2017.read_text().splitlines() if line.strip()]
        return "davis2017", [(name, sorted((root / "Annotations" / "480p" / name).glob("*.png"))) for name in names]
    sequences: dict[str, list[Path]] = {}
    for line in (root / "ImageSets" / "480p" / f"{split}.txt").read_text().splitlines():
        if not line.strip():
            continue
        annotation = line.split()[1]
        sequences.setdefault(Path(annotation).parent.name, []).append(root / annotation.lstrip("/"))
    return "davis2016", list(sequences.items())


def read_gt(path: Path, layout: str) -> np.ndarray:
    """GT labels with void set to 0 (2016: 0/255 greyscale becomes 0/1)."""
    labels = np.array(Image.open(path)).astype(np.int64)
    if labels.ndim == 3:  # DAVIS 2016 ships one greyscale+alpha mask (bear/00077.png)
        labels = labels[:, :, 0]
    if layout == "davis2016":
        return (labels > 127).astype(np.int64) if labels.max() > 1 else labels
    labels[labels == 255] = 0
    return labels


def naive_evaluate(root: Path, results: Path, split: str, method: str = "scipy") -> dict:
    """{"global": {...}, "objects": {...}, "per_frame": {...}} computed the slow, obvious way."""
    layout, sequences = list_sequences(Path(root), split)
    objects: dict[str, dict[str, float]] = {}
    per_frame: dict[str, dict[str, list[float]]] = {}
    for name, gt_paths in sequences:
        num_objects = int(read_gt(gt_paths[0], layout).max())
        for k in range(1, num_objects + 1):
            j_values, f_values = [], []
            for gt_path in gt_paths[1:-1]:
                gt = read_gt(gt_path, layout) == k
                res = np.array(Image.open(Path(results) / name / gt_path.name)) == k
                j_values.append(naive_j(gt, res))
                f_values.append(naive_f(gt, res, method))
            j_mean, j_recall, j_decay = naive_statistics(np.array(j_values))
            f_mean, f_recall, f_decay = naive_statistics(np.array(f_values))
            objects[f"{name}_{k}"] = {"J-Mean": j_mean, "J-Recall": j_recall, "J-Decay": j_decay,
                                      "F-Mean": f_mean, "F-Recall": f_recall, "F-Decay": f_decay}
            per_frame[f"{name}_{k}"] = {"J": j_values, "F": f_values}
    keys = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
    means = {key: float(np.mean([row[key] for row in objects.values()])) for key in keys}
    overall = {"J&F-Mean": (means["J-Mean"] + means["F-Mean"]) / 2.0, **means}
    return {"global": overall, "objects": objects, "per_frame": per_frame}


def max_difference(first: dict, second: dict) -> float:
    """Largest absolute difference between two metrics dicts (global, objects and per-frame values)."""
    worst = 0.0
    for key, value in first["global"].items():
        worst = max(worst, abs(value - second["global"][key]))
    if list(first["objects"]) != list(second["objects"]):
        return math.inf
    for name, row in first["objects"].items():
        for key, value in row.items():
            worst = max(worst, abs(value - second["objects"][name][key]))
        for measure in ("J", "F"):
            a = np.asarray(first["per_frame"][name][measure])
            b = np.asarray(second["per_frame"][name][measure])
            if a.shape != b.shape:
                return math.inf
            worst = max(worst, float(np.max(np.abs(a - b), initial=0.0)))
    return worst


def main() -> None:
    """`python benchmarks/naive_davis_eval.py ROOT RESULTS SPLIT OUT.json [scipy|cv2]`: one whole process."""
    import json
    import sys

    root, results, split, out = sys.argv[1:5]
    method = sys.argv[5] if len(sys.argv) > 5 else "scipy"
    Path(out).write_text(json.dumps(naive_evaluate(Path(root), Path(results), split, method=method)))


if __name__ == "__main__":
    main()
