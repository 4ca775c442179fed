"""Reader for the SegTrack-v2 layout: `<root>/JPEGImages/<seq>/` frames (.png, .bmp or .jpg) and
`<root>/GroundTruth/<seq>/` binary masks named like the frames (.png or .bmp).

A multi-object sequence has one sub-folder of binary masks per object (`GroundTruth/<seq>/1/`, `/2/`, ...): object k
is the k-th sub-folder in natural order, and a frame's masks are combined into one label map when read (where two
masks overlap the later object wins). Every frame with masks is ground truth. Split: `all` (every sequence folder),
or the names in `ImageSets/<split>.txt` when that file exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from stg.datasets.images import IMAGE_EXTENSIONS, list_annotations, list_frames
from stg.datasets.labels import MASK_EXTENSIONS, ObjectMasks
from stg.datasets.splits import SequenceFoldersDataset, check_named_after_frames, sub_folders
from stg.datasets.video import AnnotationSource, Video
from stg.errors import InputError

LAYOUT = "segtrack_v2"


def _object_masks(mask_dir: Path, objects: list[str], frame_names: list[str], video: str) -> dict[str, ObjectMasks]:
    """Frame name -> its masks, one per object folder; a frame masked for some objects but not all is an error."""
    per_object = [list_annotations(mask_dir / folder, MASK_EXTENSIONS) for folder in objects]
    for masks in per_object:
        check_named_after_frames(masks, frame_names, video)
    combined: dict[str, ObjectMasks] = {}
    for frame in frame_names:
        found = [masks[frame] for masks in per_object if frame in masks]
        if not found:
            continue
        for folder, masks in zip(objects, per_object, strict=True):
            if frame not in masks:
                raise InputError(mask_dir / folder / f"{frame}{found[0].suffix}", f"mask of object folder '{folder}' "
                                 f"is missing for frame {frame} (other objects' folders have one: {found[0]})")
        combined[frame] = ObjectMasks(tuple(found))
    return combined


@dataclass(frozen=True)
class SegTrackV2Dataset(SequenceFoldersDataset):
    """A SegTrack-v2 split: its sequences and where their frames and masks are."""

    MASKS: ClassVar[str] = "GroundTruth"
    MASKS_WHAT: ClassVar[str] = "ground-truth"
    layout: str = LAYOUT

    def video(self, name: str) -> Video:
        image_dir, mask_dir = self.folders(name)
        frames = list_frames(image_dir, IMAGE_EXTENSIONS)
        names = [frame.stem for frame in frames]
        annotations = self._annotations(mask_dir, names, name)
        if not annotations:
            raise InputError(mask_dir, f"sequence '{name}' has no ground-truth mask (expected masks named like its "
                             f"frames, e.g. {names[0]}.png, or one sub-folder of masks per object)")
        return Video(name, LAYOUT, frames, annotations, mask_dir)

    def _annotations(self, mask_dir: Path, frame_names: list[str], video: str) -> dict[str, AnnotationSource]:
        objects = sub_folders(mask_dir)
        masks = list_annotations(mask_dir, MASK_EXTENSIONS)
        if objects and masks:
            raise InputError(mask_dir, f"holds both masks ({next(iter(masks.values())).name}, ...) and object "
                             f"sub-folders ({', '.join(objects)}): which is the ground truth is ambiguous")
        if objects:
            return dict(_object_masks(mask_dir, objects, frame_names, video))
        check_named_after_frames(masks, frame_names, video)
        return dict(masks)
