"""Readers for the DAVIS 2017 and DAVIS 2016 folder layouts, with checks that name the bad file."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from stg.datasets.images import list_annotations, list_frames, natural_key, read_frame_image, read_label_png
from stg.datasets.names import check_video_name
from stg.errors import InputError

VOID_LABEL = 255
LAYOUTS = ("davis2017", "davis2016")


@dataclass(frozen=True)
class Video:
    """One sequence: its frames in order and whichever annotations exist for them."""

    name: str
    layout: str
    frame_paths: tuple[Path, ...]
    annotation_paths: dict[str, Path] = field(default_factory=dict)
    annotation_folder: Path | None = None  # where a missing annotation is expected (messages only)

    @property
    def frame_names(self) -> list[str]:
        return [path.stem for path in self.frame_paths]

    @property
    def first_annotation(self) -> Path:
        first = self.frame_paths[0]
        if first.stem not in self.annotation_paths:
            expected = (self.annotation_folder or first.parent) / f"{first.stem}.png"
            raise InputError(expected, f"annotation is missing: the first frame has no annotation (needed to know "
                             f"the objects); expected this file for frame {first}")
        return self.annotation_paths[first.stem]


@dataclass(frozen=True)
class Dataset:
    """A DAVIS-layout dataset split: the list of sequences and where their files are."""

    root: Path
    layout: str
    split: str
    resolution: str = "480p"

    @property
    def split_file(self) -> Path:
        if self.layout == "davis2017":
            return self.root / "ImageSets" / "2017" / f"{self.split}.txt"
        return self.root / "ImageSets" / self.resolution / f"{self.split}.txt"

    def _split_lines(self) -> list[str]:
        return list(self._parsed_split_lines)

    @cached_property
    def _parsed_split_lines(self) -> tuple[str, ...]:
        """Read once: DAVIS 2016 videos are looked up in the split file one by one."""
        if not self.split_file.is_file():
            raise InputError(self.split_file, f"split file for split '{self.split}' is missing")
        try:
            text = self.split_file.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise InputError(self.split_file, f"split file is not UTF-8 text ({error}): its video names cannot be "
                             "read") from None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            raise InputError(self.split_file, "split file is empty: no sequences listed")
        return tuple(lines)

    @cached_property
    def _lines_by_video(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """DAVIS 2016: each sequence's split-file lines (split into fields), in file order, keyed by the folder
        its frame lies in; parsed once, since each video and each planning step looks its lines up."""
        grouped: dict[str, list[tuple[str, ...]]] = {}
        for line in self._parsed_split_lines:
            parts = tuple(line.split())
            grouped.setdefault(Path(parts[0]).parent.name, []).append(parts)
        return {name: tuple(lines) for name, lines in grouped.items()}

    @cached_property
    def _video_names(self) -> tuple[str, ...]:
        lines = self._parsed_split_lines
        if self.layout == "davis2017":
            return tuple(check_video_name(line, self.split_file) for line in lines)
        return tuple(check_video_name(name, self.split_file) for name in self._lines_by_video)

    def video_names(self) -> list[str]:
        """Sequence names in the split file's order (the official toolkit's row order); a name that cannot be a
        folder and a command-line argument (stg.datasets.names) is an InputError naming the split file."""
        return list(self._video_names)

    def video(self, name: str) -> Video:
        if self.layout == "davis2016":
            return self._video_2016(name)
        return self._video_2017(name)

    def videos(self) -> list[Video]:
        return [self.video(name) for name in self.video_names()]

    def _folders(self, name: str) -> tuple[Path, Path]:
        image_dir = self.root / "JPEGImages" / self.resolution / name
        annotation_dir = self.root / "Annotations" / self.resolution / name
        if not image_dir.is_dir():
            raise InputError(image_dir, f"image folder of sequence '{name}' is missing")
        if not annotation_dir.is_dir():
            raise InputError(annotation_dir, f"annotation folder of sequence '{name}' is missing")
        return image_dir, annotation_dir

    def _video_2017(self, name: str) -> Video:
        image_dir, annotation_dir = self._folders(name)
        frames = list_frames(image_dir)  # natural order, any-case .jpg/.jpeg (stg.datasets.images)
        video = Video(name, self.layout, frames, list_annotations(annotation_dir), annotation_dir)
        _ = video.first_annotation
        return video

    def _video_2016(self, name: str) -> Video:
        image_dir, annotation_dir = self._folders(name)
        frames: dict[str, Path] = {}
        listed: dict[str, Path] = {}  # frame stem -> its annotation as listed, whether or not it exists
        for parts in self._lines_by_video.get(name, ()):
            frame = self.root / parts[0].lstrip("/")
            if frame.stem in frames:
                raise InputError(self.split_file, f"sequence '{name}' lists frame '{frame.stem}' twice "
                                 f"({frames[frame.stem]} and {frame})")
            if not frame.is_file():
                raise InputError(frame, f"frame listed in {self.split_file} is missing")
            frames[frame.stem] = frame
            if len(parts) > 1:
                listed[frame.stem] = self.root / parts[1].lstrip("/")
        if not frames:
            raise InputError(image_dir, "video is empty: no frames listed")
        ordered = tuple(sorted(frames.values(), key=lambda path: (natural_key(path.stem), path.name)))
        annotations = {path.stem: path for path in listed.values() if path.is_file()}
        first = listed.get(ordered[0].stem)
        video = Video(name, self.layout, ordered, annotations, first.parent if first else annotation_dir)
        _ = video.first_annotation
        return video


def _dataset_root(root: str | Path) -> Path:
    """The dataset root as a Path; a missing one, or a file in its place, is an InputError naming it."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset root folder is missing" if not root.exists()
                         else "dataset root is a file, not a folder")
    return root


def open_dataset(root: str | Path, layout: str, split: str, resolution: str = "480p") -> Dataset:
    """A dataset split, checked only for its root; sequences are checked when opened."""
    if layout == "synthetic":
        layout = "davis2017"
    if layout not in LAYOUTS:
        raise InputError("layout", f"unknown dataset layout '{layout}' (expected one of {', '.join(LAYOUTS)})")
    root = _dataset_root(root)
    return Dataset(root, layout, split, resolution)


def read_frame(path: Path) -> np.ndarray:
    """An RGB uint8 image; a missing, truncated or undecodable file is an InputError (stg.datasets.images)."""
    return read_frame_image(path)


def read_frames(video: Video) -> np.ndarray:
    """All frames as (T, H, W, 3) uint8; every frame must have the first frame's size."""
    first = read_frame(video.frame_paths[0])
    frames = np.empty((len(video.frame_paths), *first.shape), dtype=np.uint8)
    frames[0] = first
    for index, path in enumerate(video.frame_paths[1:], start=1):
        frame = read_frame(path)
        if frame.shape != first.shape:
            raise InputError(path, f"frame size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's "
                             f"{first.shape[1]}x{first.shape[0]}")
        frames[index] = frame
    return frames


def frame_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image without decoding all of it, as read_frame returns it (EXIF rotation applied)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(0x0112) in (5, 6, 7, 8):  # orientation tags that turn the image a quarter
                width, height = height, width
    except FileNotFoundError:
        raise InputError(path, "frame image is missing") from None
    except (OSError, SyntaxError) as error:
        raise InputError(path, f"frame image is corrupt or not an image ({error})") from None
    return height, width


def read_annotation(path: Path, layout: str, shape: tuple[int, int] | None = None,
                    num_objects: int | None = None) -> np.ndarray:
    """Label map (0 background, k object k, 255 void) with the layout's conventions checked.

    DAVIS 2016 masks are binary greyscale (0/255) and hold one object; DAVIS 2017 masks are
    palette PNGs whose pixel value is the object id.
    """
    values, mode = read_label_png(path)
    if values.ndim != 2:
        raise InputError(path, f"annotation must be a single-channel PNG, got mode {mode}")
    if shape is not None and values.shape != tuple(shape):
        raise InputError(path, f"mask size {values.shape[1]}x{values.shape[0]} differs from the image size "
                         f"{shape[1]}x{shape[0]}")
    if layout == "davis2016":
        return (values > 127).astype(np.uint8) if values.max(initial=0) > 1 else values.astype(np.uint8)
    labels = values.astype(np.uint8, copy=False)
    if mode != "P":
        present = np.unique(labels)
        if present.max(initial=0) > 1:
            raise InputError(path, f"multi-object annotation is not a palette PNG (mode {mode}, values "
                             f"{present[:8].tolist()}); DAVIS 2017 masks must be mode P")
    if num_objects is not None:
        objects = labels[labels != VOID_LABEL]
        highest = int(objects.max(initial=0))
        if highest > num_objects:
            raise InputError(path, f"label {highest} is beyond the first frame's {num_objects} object(s)")
    return labels


def read_first_mask(video: Video) -> tuple[np.ndarray, int]:
    """First-frame label map and its object count K, checked against the first frame's size."""
    shape = frame_size(video.frame_paths[0])
    labels = read_annotation(video.first_annotation, video.layout, shape=shape)
    num_objects = int(labels[labels != VOID_LABEL].max(initial=0))
    if num_objects == 0:
        raise InputError(video.first_annotation, "first-frame annotation contains no object")
    return labels, num_objects


def detect_layout(root: str | Path, split: str, resolution: str = "480p") -> str:
    """'davis2017' or 'davis2016', from which ImageSets file for the split exists."""
    root = _dataset_root(root)
    if (root / "ImageSets" / "2017" / f"{split}.txt").is_file():
        return "davis2017"
    if (root / "ImageSets" / resolution / f"{split}.txt").is_file():
        return "davis2016"
    raise InputError(root, f"no split file for '{split}': expected ImageSets/2017/{split}.txt (DAVIS 2017) "
                     f"or ImageSets/{resolution}/{split}.txt (DAVIS 2016)")
