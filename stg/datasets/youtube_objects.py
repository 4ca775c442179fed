"""Reader for the YouTube-Objects layout: `<root>/JPEGImages/<seq>/` frames and `<root>/Annotations/<seq>/` masks
(binary or palette PNG, named after their frame) on a subset of the frames only.

The annotated subset is the ground truth to score; each object starts at the first annotated frame that holds it,
which need not be frame 0. Split: `all` (every sequence folder), or the names in `ImageSets/<split>.txt` when that
file exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from stg.datasets.images import IMAGE_EXTENSIONS, list_annotations, list_frames
from stg.datasets.splits import SequenceFoldersDataset, check_named_after_frames
from stg.datasets.video import Video
from stg.errors import InputError

LAYOUT = "youtube_objects"


@dataclass(frozen=True)
class YouTubeObjectsDataset(SequenceFoldersDataset):
    """A YouTube-Objects split: its sequences and where their frames and annotated frames are."""

    MASKS: ClassVar[str] = "Annotations"
    MASKS_WHAT: ClassVar[str] = "annotation"
    layout: str = LAYOUT

    def video(self, name: str) -> Video:
        image_dir, annotation_dir = self.folders(name)
        frames = list_frames(image_dir, IMAGE_EXTENSIONS)
        annotations = list_annotations(annotation_dir)
        if not annotations:
            raise InputError(annotation_dir, f"sequence '{name}' has no annotated frame (expected PNG masks named "
                             f"after frames, e.g. {frames[0].stem}.png)")
        check_named_after_frames(annotations, [frame.stem for frame in frames], name)
        return Video(name, LAYOUT, frames, annotations, annotation_dir)
