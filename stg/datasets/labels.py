"""Annotation files as label maps (0 background, k object k, 255 void), with each layout's mask conventions.

- DAVIS 2017, YouTube-VOS: palette PNGs whose pixel value is the object id (a binary greyscale mask is object 1).
- DAVIS 2016: binary greyscale masks (0/255), one object.
- SegTrack-v2, YouTube-Objects, a user's folder: either a palette PNG (pixel = object id) or a binary mask (one
  object; greyscale, or colour with equal channels, as 0/1 or 0/255 with anti-aliased edges cut at 127). SegTrack-v2
  gives a multi-object sequence's masks as one binary mask per object: an ObjectMasks reference combines them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stg.datasets.images import read_label_png
from stg.errors import InputError

VOID_LABEL = 255
PALETTE_LAYOUTS = ("davis2017", "youtube_vos")
MIXED_LAYOUTS = ("segtrack_v2", "youtube_objects", "folder")  # palette or binary masks
MASK_EXTENSIONS = (".png", ".bmp")  # SegTrack-v2 ships some masks as BMP
_LAYOUT_TITLES = {"davis2017": "DAVIS 2017", "youtube_vos": "YouTube-VOS"}


@dataclass(frozen=True)
class ObjectMasks:
    """One frame's binary masks, one per object (object k = paths[k - 1]), read as one label map."""

    paths: tuple[Path, ...]

    def __str__(self) -> str:
        return " + ".join(str(path) for path in self.paths)


def _read_values(path: Path) -> tuple[np.ndarray, str]:
    """Raw pixel values and PIL mode of a PNG (checked complete) or BMP mask."""
    if Path(path).suffix.lower() != ".bmp":
        return read_label_png(path)
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            return np.asarray(image.convert("L") if mode == "1" else image), mode
    except FileNotFoundError:
        raise InputError(path, "file is missing") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(path, f"cannot be read as a BMP image ({error})") from None


def _check_shape(path: Path, values: np.ndarray, shape: tuple[int, int] | None) -> None:
    if shape is not None and values.shape[:2] != tuple(shape):
        raise InputError(path, f"mask size {values.shape[1]}x{values.shape[0]} differs from the image size "
                         f"{shape[1]}x{shape[0]}")


def _grey(path: Path, values: np.ndarray, mode: str) -> np.ndarray:
    """A single-channel view of a mask; a colour mask only when its channels are equal (grey stored as colour)."""
    if values.ndim == 2:
        return values
    colour = values[..., :3]
    if values.ndim == 3 and values.shape[2] in (3, 4) and (colour == colour[..., :1]).all():
        return colour[..., 0]
    raise InputError(path, f"mask must be a single-channel PNG (palette or greyscale), got mode {mode} with "
                     "differing colour channels")


def _binary(path: Path, grey: np.ndarray, mode: str) -> np.ndarray:
    """0/1 from a binary mask: 0/1 as is, 0/255 (anti-aliased edges allowed) cut at 127; grey ids are ambiguous."""
    highest = int(grey.max(initial=0))
    if highest <= 1:
        return grey.astype(np.uint8)
    if highest <= 127:
        present = np.unique(grey)
        raise InputError(path, f"non-palette mask (mode {mode}) holds values {present[:8].tolist()}: read as binary "
                         "only when 0/1 or 0/255; save a multi-object mask as a palette PNG (mode P)")
    return (grey > 127).astype(np.uint8)


def _mixed_labels(path: Path, shape: tuple[int, int] | None) -> np.ndarray:
    """SegTrack-v2 / YouTube-Objects / folder mask: palette pixel = object id, anything else binary (object 1)."""
    values, mode = _read_values(path)
    _check_shape(path, values, shape)
    if mode == "P":
        return values.astype(np.uint8, copy=False)
    return _binary(path, _grey(path, values, mode), mode)


def _combined(masks: ObjectMasks, shape: tuple[int, int] | None) -> np.ndarray:
    """Object k where the k-th mask is set; where masks overlap the later object wins."""
    if not masks.paths:
        raise ValueError("ObjectMasks without masks")
    first = _mixed_labels(masks.paths[0], shape)
    labels = np.where((first != 0) & (first != VOID_LABEL), 1, 0).astype(np.uint8)
    for label, path in enumerate(masks.paths[1:], start=2):
        part = _mixed_labels(path, shape)
        if part.shape != labels.shape:
            raise InputError(path, f"mask size {part.shape[1]}x{part.shape[0]} differs from object 1's mask "
                             f"{masks.paths[0]} ({labels.shape[1]}x{labels.shape[0]})")
        labels[(part != 0) & (part != VOID_LABEL)] = label
    return labels


def _check_objects(path: Path | ObjectMasks, labels: np.ndarray, num_objects: int | None) -> None:
    if num_objects is not None:
        objects = labels[labels != VOID_LABEL]
        highest = int(objects.max(initial=0))
        if highest > num_objects:
            raise InputError(path, f"label {highest} is beyond the first frame's {num_objects} object(s)")


def read_annotation(path: Path | ObjectMasks, layout: str, shape: tuple[int, int] | None = None,
                    num_objects: int | None = None) -> np.ndarray:
    """Label map (0 background, k object k, 255 void) with the layout's conventions checked.

    DAVIS 2016 masks are binary greyscale (0/255) and hold one object; DAVIS 2017 and YouTube-VOS masks are
    palette PNGs whose pixel value is the object id; the other layouts take either (module docstring).
    """
    if isinstance(path, ObjectMasks):
        labels = _combined(path, shape)
    elif layout in MIXED_LAYOUTS:
        labels = _mixed_labels(path, shape)
    else:
        labels = _davis_labels(path, layout, shape)
    _check_objects(path, labels, num_objects)
    return labels


def _davis_labels(path: Path, layout: str, shape: tuple[int, int] | None) -> np.ndarray:
    values, mode = read_label_png(path)
    if values.ndim != 2:
        raise InputError(path, f"annotation must be a single-channel PNG, got mode {mode}")
    _check_shape(path, values, shape)
    if layout == "davis2016":
        return (values > 127).astype(np.uint8) if values.max(initial=0) > 1 else values.astype(np.uint8)
    labels = values.astype(np.uint8, copy=False)
    if mode != "P":
        present = np.unique(labels)
        if present.max(initial=0) > 1:
            raise InputError(path, f"multi-object annotation is not a palette PNG (mode {mode}, values "
                             f"{present[:8].tolist()}); {_LAYOUT_TITLES.get(layout, 'DAVIS 2017')} masks must be "
                             "mode P")
    return labels
