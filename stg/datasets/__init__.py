"""Dataset layouts (DAVIS 2017 / 2016, YouTube-VOS, SegTrack-v2, YouTube-Objects, a user's folder) and the synthetic
demo generator."""

from stg.datasets.davis import Dataset, detect_layout
from stg.datasets.images import natural_key, natural_sorted
from stg.datasets.labels import VOID_LABEL, ObjectMasks, read_annotation
from stg.datasets.layouts import LAYOUT_DEFAULTS, LAYOUTS, VideoDataset, layout_defaults, open_dataset
from stg.datasets.video import (
    Video,
    frame_size,
    read_first_mask,
    read_frame,
    read_frames,
    read_labels,
    read_seed_mask,
    seed_labels,
    seed_schedule,
)
from stg.datasets.video_files import VideoFrame

__all__ = [
    "LAYOUTS",
    "LAYOUT_DEFAULTS",
    "VOID_LABEL",
    "detect_layout",
    "Dataset",
    "ObjectMasks",
    "Video",
    "VideoDataset",
    "VideoFrame",
    "frame_size",
    "layout_defaults",
    "natural_key",
    "natural_sorted",
    "open_dataset",
    "read_annotation",
    "read_first_mask",
    "read_frame",
    "read_frames",
    "read_labels",
    "read_seed_mask",
    "seed_labels",
    "seed_schedule",
]
