"""Split files and sequence folders: which sequences a split holds, for the layouts that list them either way."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from stg.datasets.images import natural_key
from stg.datasets.names import check_video_name
from stg.errors import InputError

ALL_SPLIT = "all"


def read_split_lines(split_file: Path, split: str) -> tuple[str, ...]:
    """The non-blank lines of a split file, stripped; a missing, non-UTF-8 or empty file is an InputError."""
    if not split_file.is_file():
        raise InputError(split_file, f"split file for split '{split}' is missing")
    try:
        text = split_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(split_file, f"split file is not UTF-8 text ({error}): its video names cannot be "
                         "read") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(split_file, "split file is empty: no sequences listed")
    return tuple(lines)


def sub_folders(folder: Path) -> list[str]:
    """Names of a folder's non-hidden sub-folders, in natural order."""
    with os.scandir(folder) as entries:
        names = [entry.name for entry in entries if entry.is_dir() and not entry.name.startswith(".")]
    return sorted(names, key=lambda name: (natural_key(name), name))


def sequence_names(root: Path, split: str, image_folder: Path) -> tuple[str, ...]:
    """SegTrack-v2 / YouTube-Objects: the names in `ImageSets/<split>.txt` when that file exists, else, for split
    'all', every sequence folder of `image_folder` in natural order."""
    split_file = root / "ImageSets" / f"{split}.txt"
    if split_file.is_file() or split != ALL_SPLIT:
        if not split_file.is_file():
            raise InputError(split_file, f"split file for split '{split}' is missing (split '{ALL_SPLIT}' needs "
                             f"none: it is every sequence folder of {image_folder})")
        return tuple(check_video_name(name, split_file) for name in read_split_lines(split_file, split))
    if not image_folder.is_dir():
        raise InputError(image_folder, "image folder is missing: it should hold one folder of frames per sequence")
    names = tuple(check_video_name(name, image_folder) for name in sub_folders(image_folder))
    if not names:
        raise InputError(image_folder, "holds no sequence folder")
    return names


def check_named_after_frames(annotations: dict[str, Path], frame_names: list[str], video: str) -> None:
    """Every annotation must be named after a frame of its video; one that is not is an InputError naming it."""
    known = set(frame_names)
    for name, path in annotations.items():
        if name not in known:
            raise InputError(path, f"annotation is named after no frame of video '{video}' (its frames are named "
                             f"{frame_names[0]} ... {frame_names[-1]})")


@dataclass(frozen=True)
class SequenceFoldersDataset:
    """What SegTrack-v2 and YouTube-Objects share: `<root>/JPEGImages/<seq>/` frames beside `<root>/<masks>/<seq>/`,
    split by sequence_names. A layout names its mask folder and reads the masks of one sequence."""

    MASKS: ClassVar[str] = ""       # the mask folder under root
    MASKS_WHAT: ClassVar[str] = ""  # what it holds, for messages

    root: Path
    split: str
    layout: str = ""
    scorable: bool = True

    def video_names(self) -> list[str]:
        return list(sequence_names(self.root, self.split, self.root / "JPEGImages"))

    def videos(self) -> list:
        return [self.video(name) for name in self.video_names()]

    def video(self, name: str):
        raise NotImplementedError

    def folders(self, name: str) -> tuple[Path, Path]:
        """The sequence's frame and mask folders; a missing one is an InputError naming it."""
        image_dir, mask_dir = self.root / "JPEGImages" / name, self.root / self.MASKS / name
        if not image_dir.is_dir():
            raise InputError(image_dir, f"image folder of sequence '{name}' is missing")
        if not mask_dir.is_dir():
            raise InputError(mask_dir, f"{self.MASKS_WHAT} folder of sequence '{name}' is missing")
        return image_dir, mask_dir
