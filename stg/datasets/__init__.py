"""Dataset layouts (DAVIS 2017, DAVIS 2016) and the synthetic demo generator."""

from stg.datasets.davis import (
    VOID_LABEL,
    Dataset,
    Video,
    detect_layout,
    frame_size,
    open_dataset,
    read_annotation,
    read_first_mask,
    read_frame,
    read_frames,
)
from stg.datasets.images import natural_key, natural_sorted

__all__ = [
    "VOID_LABEL",
    "detect_layout",
    "Dataset",
    "Video",
    "frame_size",
    "natural_key",
    "natural_sorted",
    "open_dataset",
    "read_annotation",
    "read_first_mask",
    "read_frame",
    "read_frames",
]
