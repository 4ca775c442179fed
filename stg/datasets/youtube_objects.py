"""Reader for the YouTube-Objects layout: `<root>/JPEGImages/<seq>/` frames and `<root>/Annotations/<seq>/` masks
(binary or palette PNG, named after their frame) on a subset of the frames only.

The annotated subset is the ground truth to score; each object starts at the first annotated frame that holds it,
which need not be frame 0. Split: `all` (every sequence folder), or the names in `ImageSets/<split>.txt` when that
file exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stg.datasets.images import IMAGE_EXTENSIONS, list_annotations, list_frames
from stg.datasets.splits import check_named_after_frames, sequence_names
from stg.datasets.video import Video
from stg.errors import InputError

LAYOUT = "youtube_objects"


@dataclass(frozen=True)
class YouTubeObjectsDataset:
    """A YouTube-Objects split: its sequences and where their frames and annotated frames are."""

    root: Path
    split: str
    layout: str = LAYOUT
    scorable: bool = True

    def video_names(self) -> list[str]:
        return list(sequence_names(self.root, self.split, self.root / "JPEGImages"))

    def videos(self) -> list[Video]:
        return [self.video(name) for name in self.video_names()]

    def video(self, name: str) -> Video:
        image_dir, annotation_dir = self.root / "JPEGImages" / name, self.root / "Annotations" / name
        if not image_dir.is_dir():
            raise InputError(image_dir, f"image folder of sequence '{name}' is missing")
        if not annotation_dir.is_dir():
            raise InputError(annotation_dir, f"annotation folder of sequence '{name}' is missing")
        frames = list_frames(image_dir, IMAGE_EXTENSIONS)
        annotations = list_annotations(annotation_dir)
        if not annotations:
            raise InputError(annotation_dir, f"sequence '{name}' has no annotated frame (expected PNG masks named "
                             f"after frames, e.g. {frames[0].stem}.png)")
        check_named_after_frames(annotations, [frame.stem for frame in frames], name)
        return Video(name, LAYOUT, frames, annotations, annotation_dir)
