"""Validated reading of DAVIS ground truth and results: which files a sequence needs, and their label maps.

Every rule of the official semi-supervised task lives here (void is background, the first and last
frames are not scored, labels above the first frame's objects are errors), each failure an InputError
naming the file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stg.datasets import VOID_LABEL, Dataset, frame_size, read_annotation
from stg.datasets.images import natural_key, read_label_png
from stg.errors import InputError
from stg.metrics.decode import _kernels, png_rows, read_labels_once, read_png_bytes  # _kernels: None unbuilt

log = logging.getLogger(__name__)
DAVIS_LAYOUTS = ("davis2017", "davis2016")
_SHOWN = 8  # names quoted in a warning


def read_mask(path: Path | str) -> tuple[np.ndarray, str]:
    """A mask PNG's values and mode: read once, checked complete (its IEND chunk), decoded fast where possible.

    The checks and the 16-bit rule are stg.datasets.images' (the decoder every stage uses): a truncated
    file is an InputError even where PIL would decode it, a binary 16-bit mask reads as 0/1 and another
    16-bit one is an InputError saying which values it holds.
    """
    values, mode = read_labels_once(path)
    if mode.startswith("I"):  # 16-bit greyscale, clipped to 8 bits by the fallback decoder: read it properly
        values, mode = read_label_png(path)
    return values, mode


def read_gt_labels(path: Path | str, layout: str, shape: tuple[int, int] | None) -> np.ndarray:
    """GT label map with void (255) set to background, as the official semi-supervised task does.

    The checks are those of `stg.datasets.read_annotation` (single channel, frame size, DAVIS
    2017 multi-object masks in palette mode), on one fast read of the file. DAVIS 2016 masks
    become 0/1, and greyscale+alpha is accepted there: DAVIS 2016 itself ships one such file
    (bear/00077.png, opaque alpha), which `read_annotation` rejects.
    """
    values, mode = read_mask(path)
    if layout == "davis2016" and mode == "LA" and values.ndim == 3:
        values = values[:, :, 0]
    if values.ndim != 2:
        raise InputError(path, f"annotation must be a single-channel PNG, got mode {mode}")
    if shape is not None and values.shape != tuple(shape):
        raise InputError(path, f"mask size {values.shape[1]}x{values.shape[0]} differs from the first frame's "
                         f"{shape[1]}x{shape[0]}")
    if layout == "davis2016":
        if values.max(initial=0) <= 1:
            return values.astype(np.uint8, copy=False)
        if values.flags.writeable and values.dtype == np.uint8:  # in place: no second frame-sized buffer
            return np.greater(values, 127, out=values.view(np.bool_)).view(np.uint8)
        return (values > 127).astype(np.uint8)
    labels = values.astype(np.uint8, copy=False)
    if mode != "P" and labels.max(initial=0) > 1:
        raise InputError(path, f"multi-object annotation is not a palette PNG (mode {mode}); DAVIS 2017 "
                         "masks must be mode P")
    return np.where(labels == VOID_LABEL, np.uint8(0), labels)


def read_result_labels(path: Path | str, shape: tuple[int, int], num_objects: int) -> np.ndarray:
    """Result label map; a label above K, a wrong size or a multi-channel PNG is an InputError."""
    values, mode = read_mask(path)
    if values.ndim != 2:
        raise InputError(path, f"result must be a single-channel (palette) PNG, got mode {mode}")
    if values.shape != tuple(shape):
        raise InputError(path, f"result size {values.shape[1]}x{values.shape[0]} differs from the ground "
                         f"truth's {shape[1]}x{shape[0]}")
    highest = int(values.max(initial=0))
    if highest > num_objects:
        raise InputError(path, f"label {highest} is above the sequence's {num_objects} object(s) "
                         "(the first ground-truth frame defines the objects)")
    return values.astype(np.uint8, copy=False)


def fast_pair_counts(gt_path: Path | str, result_path: Path | str, layout: str, shape: tuple[int, int],
                     num_objects: int, radius: int) -> list[tuple[int, ...]] | None:
    """One scored DAVIS frame's per-object pixel counts (stg.metrics._kernels.png_counts), decoded from both PNGs'
    rows straight to runs; None where the general path must read the frame: no compiled kernel, a PNG the fast
    decoder does not take (16-bit, RGB, LA, interlaced, ...), a size other than the sequence's, a result label above
    K or a multi-object greyscale GT. The general path applies the same rules and raises the error naming the file; a
    missing or truncated file fails here as there.
    """
    if _kernels is None or layout not in DAVIS_LAYOUTS:
        return None
    gt_data, result_data = read_png_bytes(gt_path), read_png_bytes(result_path)
    gt, result = png_rows(gt_data), png_rows(result_data)
    height, width = shape
    if (gt is None or result is None or (gt.height, gt.width) != (height, width)
            or (result.height, result.width) != (height, width)):
        return None
    decoded = _kernels.png_counts(gt.rows, result.rows, width, height, num_objects, radius,
                                  1 if layout == "davis2016" else 0)
    if decoded is None:
        return None
    counts, gt_highest, result_highest = decoded
    if result_highest > num_objects or (layout == "davis2017" and gt.mode != "P" and gt_highest > 1):
        return None
    return counts


@dataclass(frozen=True)
class SequencePlan:
    """One sequence's objects, frame size and the file pairs of its scored frames."""

    name: str
    layout: str
    num_objects: int
    shape: tuple[int, int]
    frames: tuple[str, ...]
    gt_paths: tuple[Path, ...]
    result_paths: tuple[str, ...]
    # per object, the positions in `frames` it is scored on; None: every frame (DAVIS: every object starts at 0)
    object_frames: tuple[tuple[int, ...], ...] | None = None


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... ({len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


def unknown_sequence_folders(dataset: Dataset, results_dir: Path) -> list[str]:
    """Folders of results_dir that the split does not list (they are not scored), each named in a warning.

    Files (the official toolkit writes its CSVs there) and hidden entries are not sequences and pass quietly.
    """
    listed = set(dataset.video_names())
    unknown = sorted((entry.name for entry in Path(results_dir).iterdir()
                      if entry.is_dir() and not entry.name.startswith(".") and entry.name not in listed),
                     key=natural_key)
    if unknown:
        log.warning("%s: %d folder(s) are not sequences of split '%s' and are not scored: %s", results_dir,
                    len(unknown), dataset.split, _listing(unknown))
    return unknown


def _result_frames(result_folder: Path, frames: list[str]) -> set[str]:
    """The frames that have a result PNG in result_folder (one directory scan, no stat per frame); warns about
    result PNGs named after no frame of the sequence (not scored: a naming mistake, usually)."""
    known = set(frames)
    present: set[str] = set()
    unknown: list[str] = []
    with os.scandir(result_folder) as entries:
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if suffix.lower() != ".png" or entry.name.startswith("."):
                continue
            if suffix == ".png" and stem in known:
                if entry.is_file():
                    present.add(stem)
            else:
                unknown.append(entry.name)
    if unknown:
        unknown.sort(key=natural_key)
        log.warning("%s: %d PNG(s) are named after no frame of the sequence and are not scored: %s (frames are "
                    "named %s ... %s)", result_folder, len(unknown), _listing(unknown), frames[0], frames[-1])
    return present


def first_frame_objects(video: Any) -> tuple[tuple[int, int], int]:
    """(H, W) and K of a DAVIS sequence from its first annotation, read by the decoder and rules of every scored
    ground-truth frame; scoring reads no JPEG (nor does the official toolkit)."""
    path = video.first_annotation
    labels = read_gt_labels(path, video.layout, None)
    num_objects = int(labels.max(initial=0))
    if num_objects == 0:
        raise InputError(path, "first-frame annotation contains no object")
    return (int(labels.shape[0]), int(labels.shape[1])), num_objects


def plan_sequence(dataset: Dataset, name: str, results_dir: Path) -> SequencePlan:
    """Check that every file needed exists (reading no result PNG) and read K from the first GT.

    Planning the split's first sequence also warns about results_dir's folders that no sequence of the
    split owns; every sequence warns about its result PNGs that no frame owns. Layouts other than DAVIS are
    planned by plan_late_sequence.
    """
    if name == dataset.video_names()[0] and Path(results_dir).is_dir():
        unknown_sequence_folders(dataset, results_dir)
    if dataset.layout not in DAVIS_LAYOUTS:
        return plan_late_sequence(dataset, name, results_dir)
    video = dataset.video(name)
    names = video.frame_names
    if len(names) < 3:
        raise InputError(video.frame_paths[0].parent, f"sequence '{video.name}' has {len(names)} frame(s): "
                         "the first and last are not scored, so nothing is left to evaluate")
    shape, num_objects = first_frame_objects(video)
    result_folder = results_dir / video.name
    if not result_folder.is_dir():
        raise InputError(result_folder, f"result folder of sequence '{video.name}' is missing")
    present = _result_frames(result_folder, names)
    annotation_folder = video.annotation_folder or dataset.root / "Annotations" / dataset.resolution / video.name
    scored = tuple(names[1:-1])
    gt_paths: list[Path] = []
    result_paths: list[str] = []
    folder = str(result_folder)
    for frame in scored:
        gt_path = video.annotation_paths.get(frame)
        if gt_path is None:
            raise InputError(annotation_folder / f"{frame}.png", "ground-truth annotation of a scored frame is missing")
        if frame not in present:
            raise InputError(result_folder / f"{frame}.png", "result frame is missing")
        gt_paths.append(gt_path)
        result_paths.append(os.path.join(folder, f"{frame}.png"))
    return SequencePlan(video.name, video.layout, num_objects, shape, scored, tuple(gt_paths), tuple(result_paths))


def plan_late_sequence(dataset: Any, name: str, results_dir: Path) -> SequencePlan:
    """A sequence of a layout whose objects may start late and whose ground truth may cover some frames only
    (YouTube-VOS train, SegTrack-v2, YouTube-Objects).

    Scored: the frames with ground truth (Video.scored_frames), each object only after its start frame (its seed,
    given, is not scored, as DAVIS leaves out frame 0); the last frame is scored (DAVIS's protocol alone leaves it
    out). A frame where no object is scored is left out; so is an object scored on no frame (a warning names it).
    """
    video = dataset.video(name)
    names = video.frame_names
    starts = video.object_starts
    num_objects = video.num_objects
    result_folder = results_dir / video.name
    if not result_folder.is_dir():
        raise InputError(result_folder, f"result folder of sequence '{video.name}' is missing")
    present = _result_frames(result_folder, names)
    scored = [index for index in video.scored_frames if any(index > start for start in starts.values())]
    object_frames = tuple(tuple(position for position, index in enumerate(scored)
                                if obj in starts and index > starts[obj])
                          for obj in range(1, num_objects + 1))
    unscored = [obj for obj in starts if not object_frames[obj - 1]]
    if unscored:
        log.warning("%s: object(s) %s have no ground truth after their start frame and are not scored", video.name,
                    unscored)
    result_paths: list[str] = []
    for index in scored:
        if names[index] not in present:
            raise InputError(result_folder / f"{names[index]}.png", "result frame is missing")
        result_paths.append(os.path.join(str(result_folder), f"{names[index]}.png"))
    shape = frame_size(video.frame_paths[0])
    gt_paths = tuple(video.annotation_paths[names[index]] for index in scored)
    return SequencePlan(video.name, video.layout, num_objects, (int(shape[0]), int(shape[1])),
                        tuple(names[index] for index in scored), gt_paths, tuple(result_paths), object_frames)


def read_scored_labels(path: Any, layout: str, shape: tuple[int, int]) -> np.ndarray:
    """Ground truth of a layout other than DAVIS (its reader's rules, stg.datasets.read_annotation), void as
    background."""
    labels = read_annotation(path, layout, shape=shape)
    return np.where(labels == VOID_LABEL, np.uint8(0), labels).astype(np.uint8)
