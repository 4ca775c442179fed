"""Readers for the DAVIS 2017 and DAVIS 2016 folder layouts, with checks that name the bad file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from stg.datasets.images import list_annotations, list_frames, natural_key
from stg.datasets.labels import VOID_LABEL, read_annotation
from stg.datasets.names import check_video_name
from stg.datasets.splits import read_split_lines
from stg.datasets.video import (
    Video,
    dataset_root,
    frame_size,
    read_first_mask,
    read_frame,
    read_frames,
)
from stg.errors import InputError

if TYPE_CHECKING:
    from stg.datasets.layouts import VideoDataset

LAYOUTS = ("davis2017", "davis2016")
# Moved to stg.datasets.video / stg.datasets.labels (shared by every layout); still importable from here.
__all__ = ["LAYOUTS", "VOID_LABEL", "Dataset", "Video", "detect_layout", "frame_size", "open_dataset",
           "read_annotation", "read_first_mask", "read_frame", "read_frames"]


@dataclass(frozen=True)
class Dataset:
    """A DAVIS-layout dataset split: the list of sequences and where their files are."""

    root: Path
    layout: str
    split: str
    resolution: str = "480p"

    @property
    def scorable(self) -> bool:
        """DAVIS splits are read as ground truth to score (the metrics stage checks each frame's file)."""
        return True

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
        return read_split_lines(self.split_file, self.split)

    @cached_property
    def _lines_by_video(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """DAVIS 2016: each sequence's split-file lines (split into fields), in file order, keyed by the folder
        its frame lies in; parsed once, since each video and each planning step looks its lines up."""
        grouped: dict[str, list[tuple[str, ...]]] = {}
        for line in self._parsed_split_lines:
            grouped.setdefault(davis2016_line_video(line), []).append(tuple(line.split()))
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


def davis2016_line_video(line: str) -> str:
    """The sequence of a DAVIS 2016 split-file line ('/JPEGImages/480p/<video>/00000.jpg /Annotations/...'): the
    folder its frame lies in."""
    return Path(line.split()[0]).parent.name


def open_dataset(root: str | Path, layout: str, split: str, resolution: str = "480p") -> VideoDataset:
    """stg.datasets.layouts.open_dataset (every layout), kept importable from here."""
    from stg.datasets.layouts import open_dataset as open_any_layout

    return open_any_layout(root, layout, split, resolution)


def detect_layout(root: str | Path, split: str, resolution: str = "480p") -> str:
    """'davis2017' or 'davis2016', from which ImageSets file for the split exists."""
    root = dataset_root(root)
    if (root / "ImageSets" / "2017" / f"{split}.txt").is_file():
        return "davis2017"
    if (root / "ImageSets" / resolution / f"{split}.txt").is_file():
        return "davis2016"
    raise InputError(root, f"no split file for '{split}': expected ImageSets/2017/{split}.txt (DAVIS 2017) "
                     f"or ImageSets/{resolution}/{split}.txt (DAVIS 2016)")
