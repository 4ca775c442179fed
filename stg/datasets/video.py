"""One video of any layout (`Video`) and the readers every layout shares: frames, annotations, per-object seeds.

A frame is an image path or, for a video file, a `VideoFrame` reference (stg.datasets.video_files); an annotation is
a mask path or, for a SegTrack-v2 multi-object frame, an `ObjectMasks` reference (stg.datasets.labels). The readers
below accept either, so stages written for DAVIS frame folders read every layout.

Objects may start late (YouTube-VOS: an object is annotated first where it enters). `Video.object_starts` says
where each starts and `read_seed_mask` gives the label map that seeds the objects starting at a frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from stg.datasets.images import read_frame_image
from stg.datasets.labels import VOID_LABEL, ObjectMasks, read_annotation
from stg.datasets.video_files import VideoFrame, read_video_frame, video_frame_size
from stg.errors import InputError

FrameSource = Path | VideoFrame
AnnotationSource = Path | ObjectMasks
DAVIS_LAYOUTS = ("davis2017", "davis2016")


@dataclass(frozen=True)
class Video:
    """One sequence: its frames in order and whichever annotations exist for them."""

    name: str
    layout: str
    frame_paths: tuple[FrameSource, ...]
    annotation_paths: dict[str, AnnotationSource] = field(default_factory=dict)
    annotation_folder: Path | None = None  # where a missing annotation is expected (messages only)
    declared_starts: dict[int, int] | None = None  # object id -> first frame, as the dataset's metadata says
    metadata_file: Path | None = None  # the file declared_starts come from (messages only)
    has_ground_truth: bool = True  # False: the annotations only seed objects, there is nothing to score

    @property
    def frame_names(self) -> list[str]:
        return [path.stem for path in self.frame_paths]

    @property
    def first_annotation(self) -> AnnotationSource:
        first = self.frame_paths[0]
        if first.stem not in self.annotation_paths:
            expected = (self.annotation_folder or first.parent) / f"{first.stem}.png"
            raise InputError(expected, f"annotation is missing: the first frame has no annotation (needed to know "
                             f"the objects); expected this file for frame {first}")
        return self.annotation_paths[first.stem]

    def annotation_path(self, index: int) -> AnnotationSource:
        """The annotation of frame `index`; none is an InputError naming the file expected."""
        frame = self.frame_paths[index]
        if frame.stem not in self.annotation_paths:
            expected = (self.annotation_folder or frame.parent) / f"{frame.stem}.png"
            raise InputError(expected, f"annotation is missing: frame {frame} has none")
        return self.annotation_paths[frame.stem]

    @cached_property
    def object_starts(self) -> dict[int, int]:
        """Object id -> index of the first frame where it is annotated, by id.

        DAVIS: every object of the first annotation, at 0; YouTube-VOS: from meta.json; the other layouts: the first
        annotated frame holding a pixel of the object (reads every annotation once).
        """
        if self.declared_starts is not None:
            return dict(sorted(self.declared_starts.items()))
        if self.layout in DAVIS_LAYOUTS:
            labels, _ = read_first_mask(self)
            return {int(label): 0 for label in np.unique(labels) if label not in (0, VOID_LABEL)}
        return _starts_from_annotations(self)

    @property
    def num_objects(self) -> int:
        """The highest object id K (ids run 1..K; YouTube-VOS may skip one)."""
        return max(self.object_starts, default=0)

    @property
    def seed_frames(self) -> tuple[int, ...]:
        """Indices of the frames where at least one object starts, in order."""
        return tuple(sorted(set(self.object_starts.values())))

    @property
    def scored_frames(self) -> tuple[int, ...]:
        """Indices of the frames with ground truth to score against; none when the video has no ground truth.

        Seed frames are included: an evaluation protocol leaves out what it does not score (DAVIS: first, last).
        """
        if not self.has_ground_truth:
            return ()
        return tuple(index for index, name in enumerate(self.frame_names) if name in self.annotation_paths)


def _starts_from_annotations(video: Video) -> dict[int, int]:
    starts: dict[int, int] = {}
    for index, name in enumerate(video.frame_names):
        if name in video.annotation_paths:
            labels = read_annotation(video.annotation_paths[name], video.layout,
                                     shape=frame_size(video.frame_paths[index]))
            for label in np.unique(labels):
                if label not in (0, VOID_LABEL):
                    starts.setdefault(int(label), index)
    if not starts:
        where = video.annotation_folder or video.frame_paths[0].parent
        raise InputError(where, f"no object is annotated in video '{video.name}': all its "
                         f"{len(video.annotation_paths)} annotation(s) are empty")
    return dict(sorted(starts.items()))


def read_frame(path: FrameSource) -> np.ndarray:
    """An RGB uint8 image; a missing, truncated or undecodable file is an InputError (stg.datasets.images)."""
    if isinstance(path, VideoFrame):
        return read_video_frame(path)
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


def frame_size(path: FrameSource) -> tuple[int, int]:
    """(H, W) of an image without decoding all of it, as read_frame returns it (EXIF rotation applied)."""
    from PIL import Image

    if isinstance(path, VideoFrame):
        return video_frame_size(path)
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


def read_first_mask(video: Video) -> tuple[np.ndarray, int]:
    """First-frame label map and its object count K, checked against the first frame's size."""
    shape = frame_size(video.frame_paths[0])
    labels = read_annotation(video.first_annotation, video.layout, shape=shape)
    num_objects = int(labels[labels != VOID_LABEL].max(initial=0))
    if num_objects == 0:
        raise InputError(video.first_annotation, "first-frame annotation contains no object")
    return labels, num_objects


def read_labels(video: Video, index: int) -> np.ndarray:
    """The annotation of frame `index` as a label map, checked against the frame's size and, where metadata
    declares the objects (YouTube-VOS meta.json), against those objects."""
    path = video.annotation_path(index)
    labels = read_annotation(path, video.layout, shape=frame_size(video.frame_paths[index]))
    if video.declared_starts is not None:
        present = {int(label) for label in np.unique(labels)} - {0, VOID_LABEL}
        unknown = sorted(present - set(video.declared_starts))
        if unknown:
            raise InputError(path, f"object id(s) {unknown} are not objects of video '{video.name}' in "
                             f"{video.metadata_file} (it lists {sorted(video.declared_starts)})")
    return labels


def read_seed_mask(video: Video, index: int) -> np.ndarray:
    """The label map seeding the objects that start at frame `index`: its annotation with every other object
    cleared to background (void kept), so a late object can be started where it enters."""
    starting = [label for label, start in video.object_starts.items() if start == index]
    if not starting:
        raise ValueError(f"no object of video '{video.name}' starts at frame {index} (starts: {video.object_starts})")
    labels = read_labels(video, index)
    absent = [label for label in starting if not (labels == label).any()]
    if absent:
        source = f" ({video.metadata_file})" if video.metadata_file else ""
        raise InputError(video.annotation_path(index), f"object(s) {absent} start at this frame{source} but have "
                         "no pixel in its annotation")
    keep = np.isin(labels, [*starting, VOID_LABEL])
    return np.where(keep, labels, 0).astype(np.uint8)


def seed_schedule(video: Video) -> dict[int, np.ndarray]:
    """{frame index: the label map seeding the objects that start there} (read_seed_mask), in frame order.

    DAVIS: {0: the first-frame annotation}, read by read_first_mask exactly as the stages always have. Every
    stage that starts objects (warp, graph, online learning) takes its seeds from here, so an object starts
    at its `object_starts` frame and has nothing before it.
    """
    if video.layout in DAVIS_LAYOUTS and video.declared_starts is None:
        return {0: read_first_mask(video)[0]}
    return {frame: read_seed_mask(video, frame) for frame in video.seed_frames}


def seed_labels(seeds: dict[int, np.ndarray], frame: int, shape: tuple[int, int]) -> np.ndarray:
    """The seed label map of `frame`, or an all-background map where no object starts."""
    if frame in seeds:
        return seeds[frame]
    return np.zeros(shape, dtype=np.uint8)


def dataset_root(root: str | Path) -> Path:
    """The dataset root as a Path; a missing one, or a file in its place, is an InputError naming it."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset root folder is missing" if not root.exists()
                         else "dataset root is a file, not a folder")
    return root
