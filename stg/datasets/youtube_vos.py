"""Reader for the YouTube-VOS 2018 / 2019 layout: `<root>/<split>/{JPEGImages,Annotations}/<video>/` and the split's
official `meta.json`.

Frames keep their names, which are not contiguous (the released splits keep every 5th frame under its original
index: 00000, 00005, ...), in natural order. Videos come in meta.json's order (the file that defines the split, as a
DAVIS split file does). meta.json gives each object's frames; its first listed frame is where the object starts, and
an annotation must exist there. In `valid` and `test` an object is annotated only on that frame (objects may start
after frame 0) and there is no ground truth to score; in `train` every kept frame is annotated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from stg.datasets.images import list_annotations, list_frames, natural_key
from stg.datasets.labels import VOID_LABEL
from stg.datasets.names import check_video_name
from stg.datasets.splits import check_named_after_frames
from stg.datasets.video import Video
from stg.errors import InputError

LAYOUT = "youtube_vos"
UNSCORED_SPLITS = ("valid", "test")  # and their variants (valid_all_frames, test_all_frames): no ground truth

ObjectFrames = dict[int, tuple[str, ...]]  # object id -> the frames meta.json lists for it


def _objects(meta_file: Path, video: str, entry: object) -> ObjectFrames:
    """One video's objects from meta.json, checked: ids 1..254, each with a non-empty list of frame names."""
    objects = entry.get("objects") if isinstance(entry, dict) else None
    if not isinstance(objects, dict) or not objects:
        raise InputError(meta_file, f"video '{video}' has no \"objects\" (expected {{\"objects\": {{\"1\": "
                         "{\"category\": ..., \"frames\": [...]}}}})")
    parsed: ObjectFrames = {}
    for key, value in objects.items():
        if not (str(key).isdigit() and 0 < int(key) < VOID_LABEL):
            raise InputError(meta_file, f"video '{video}': object id {key!r} is not a number from 1 to "
                             f"{VOID_LABEL - 1}")
        frames = value.get("frames") if isinstance(value, dict) else None
        if not isinstance(frames, list) or not frames or not all(isinstance(name, str) for name in frames):
            raise InputError(meta_file, f"video '{video}': object {key} has no \"frames\" list of frame names")
        parsed[int(key)] = tuple(frames)
    return parsed


def read_meta(meta_file: Path) -> dict[str, ObjectFrames]:
    """Video -> objects of an official meta.json, in file order; a missing or malformed file is an InputError."""
    if not meta_file.is_file():
        raise InputError(meta_file, "meta.json is missing (YouTube-VOS lists each split's videos and objects in it)")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(meta_file, f"meta.json cannot be read as JSON ({error})") from None
    videos = meta.get("videos") if isinstance(meta, dict) else None
    if not isinstance(videos, dict):
        raise InputError(meta_file, "meta.json has no \"videos\" object (expected {\"videos\": {\"<video>\": "
                         "{\"objects\": ...}}})")
    if not videos:
        raise InputError(meta_file, "meta.json lists no videos")
    return {check_video_name(name, meta_file): _objects(meta_file, name, entry) for name, entry in videos.items()}


@dataclass(frozen=True)
class YouTubeVOSDataset:
    """A YouTube-VOS split: `<root>/<split>/` with its meta.json."""

    root: Path
    split: str
    layout: str = LAYOUT

    @property
    def split_folder(self) -> Path:
        return self.root / self.split

    @property
    def meta_file(self) -> Path:
        return self.split_folder / "meta.json"

    @property
    def scorable(self) -> bool:
        """Only the training split's annotations are ground truth; valid and test only seed the objects."""
        return not self.split.startswith(UNSCORED_SPLITS)

    @cached_property
    def _meta(self) -> dict[str, ObjectFrames]:
        return read_meta(self.meta_file)

    def video_names(self) -> list[str]:
        """The split's videos in meta.json's order."""
        return list(self._meta)

    def videos(self) -> list[Video]:
        return [self.video(name) for name in self.video_names()]

    def _folder(self, kind: str, name: str) -> Path:
        folder = self.split_folder / kind / name
        if not folder.is_dir():
            raise InputError(folder, f"{'image' if kind == 'JPEGImages' else 'annotation'} folder of video '{name}' "
                             f"(listed in {self.meta_file}) is missing")
        return folder

    def video(self, name: str) -> Video:
        if name not in self._meta:
            raise InputError(self.meta_file, f"video '{name}' is not listed in split '{self.split}'")
        image_dir, annotation_dir = self._folder("JPEGImages", name), self._folder("Annotations", name)
        frames = list_frames(image_dir)
        annotations = list_annotations(annotation_dir)
        names = [frame.stem for frame in frames]
        check_named_after_frames(annotations, names, name)
        starts = self._starts(name, names, image_dir)
        for label, start in starts.items():
            if names[start] not in annotations:
                raise InputError(annotation_dir / f"{names[start]}.png", f"annotation is missing: object {label} of "
                                 f"video '{name}' starts at this frame ({self.meta_file})")
        return Video(name, LAYOUT, frames, annotations, annotation_dir, declared_starts=starts,
                     metadata_file=self.meta_file, has_ground_truth=self.scorable)

    def _starts(self, name: str, frame_names: list[str], image_dir: Path) -> dict[int, int]:
        """Object id -> index of its first frame listed in meta.json, which must be a frame on disk."""
        index = {frame: position for position, frame in enumerate(frame_names)}
        starts = {}
        for label, listed in self._meta[name].items():
            first = min(listed, key=natural_key)
            if first not in index:
                raise InputError(self.meta_file, f"object {label} of video '{name}' starts at frame '{first}', which "
                                 f"is not in {image_dir}")
            starts[label] = index[first]
        return starts
