"""Reader for a user's own footage (`layout: folder`): no ground truth, only the annotated frames that seed objects.

The root holds, per video, either a sub-folder of frames (any names, natural order; .jpg, .jpeg, .png, .bmp) or a
video file (.mp4, .avi, .mov, .mkv) decoded with OpenCV on demand (stg.datasets.video_files; its frames are named
00000, 00001, ...), plus `annotations/<video>/<frame name>.png`: palette or binary masks of one or more frames.
Each object starts at the first annotated frame that holds it. Split: `all` (every video, in natural order of name)
or one video's name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from stg.datasets.images import IMAGE_EXTENSIONS, list_annotations, list_frames, natural_key
from stg.datasets.names import check_video_name
from stg.datasets.splits import ALL_SPLIT, check_named_after_frames
from stg.datasets.video import FrameSource, Video
from stg.datasets.video_files import VIDEO_EXTENSIONS, video_frames
from stg.errors import InputError

LAYOUT = "folder"
ANNOTATIONS = "annotations"


def _source_name(entry: os.DirEntry) -> str | None:
    """The video name of a root entry (a frame folder or a video file), or None when it is no video."""
    if entry.name.startswith(".") or entry.name == ANNOTATIONS:
        return None
    if entry.is_dir():
        return entry.name
    stem, suffix = os.path.splitext(entry.name)
    return stem if suffix.lower() in VIDEO_EXTENSIONS and entry.is_file() else None


def find_videos(root: Path) -> dict[str, Path]:
    """Video name -> its frame folder or video file, in natural order; two sources of one name are an error."""
    sources: dict[str, Path] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            name = _source_name(entry)
            if name is None:
                continue
            if name in sources:
                raise InputError(root, f"two videos are named '{name}' ({sources[name].name} and {entry.name}): "
                                 "which one is meant is ambiguous; rename or remove one")
            sources[check_video_name(name, root / entry.name)] = root / entry.name
    return dict(sorted(sources.items(), key=lambda item: (natural_key(item[0]), item[0])))


@dataclass(frozen=True)
class FolderDataset:
    """A folder of a user's videos; nothing in it is ground truth to score."""

    root: Path
    split: str
    layout: str = LAYOUT
    scorable: bool = False

    @cached_property
    def _sources(self) -> dict[str, Path]:
        sources = find_videos(self.root)
        if not sources:
            raise InputError(self.root, "holds no video: expected sub-folders of frames or video files ("
                             f"{', '.join(VIDEO_EXTENSIONS)}) next to '{ANNOTATIONS}/'")
        return sources

    def video_names(self) -> list[str]:
        """Every video for split 'all', else the one video the split names."""
        if self.split == ALL_SPLIT:
            return list(self._sources)
        if self.split not in self._sources:
            raise InputError(self.root, f"split '{self.split}' is neither '{ALL_SPLIT}' nor a video of this folder "
                             f"(videos: {', '.join(list(self._sources)[:8])})")
        return [self.split]

    def videos(self) -> list[Video]:
        return [self.video(name) for name in self.video_names()]

    def video(self, name: str) -> Video:
        if name not in self._sources:
            raise InputError(self.root / name, f"video '{name}' is not in the folder (neither a frame folder nor "
                             f"a video file {'/'.join(VIDEO_EXTENSIONS)})")
        source = self._sources[name]
        frames: tuple[FrameSource, ...] = list_frames(source, IMAGE_EXTENSIONS) if source.is_dir() \
            else video_frames(source)
        annotation_dir = self.root / ANNOTATIONS / name
        annotations = list_annotations(annotation_dir) if annotation_dir.is_dir() else {}
        if not annotations:
            raise InputError(annotation_dir, f"video '{name}' has no annotated frame: put at least one mask here, "
                             f"named after its frame (e.g. {frames[0].stem}.png)")
        check_named_after_frames(annotations, [frame.stem for frame in frames], name)
        return Video(name, LAYOUT, frames, annotations, annotation_dir, has_ground_truth=False)
