"""Every dataset layout behind one `open_dataset`, and each layout's default settings from the paper.

A dataset (any layout) has `root`, `layout`, `split`, `scorable` (whether its annotations hold ground truth to score)
and `video_names()`, `video(name)`, `videos()`; every video is a stg.datasets.video.Video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from stg.datasets.davis import Dataset
from stg.datasets.folder import FolderDataset
from stg.datasets.segtrack_v2 import SegTrackV2Dataset
from stg.datasets.video import Video, dataset_root
from stg.datasets.youtube_objects import YouTubeObjectsDataset
from stg.datasets.youtube_vos import YouTubeVOSDataset
from stg.errors import InputError

LAYOUTS = ("davis2017", "davis2016", "youtube_vos", "segtrack_v2", "youtube_objects", "folder")

# Settings the paper uses per benchmark (Eq. 3: graph alpha / beta), for a caller to merge under the user's config
# (use layout_defaults() for a copy to change). A user's own footage (folder) gets the DAVIS / YouTube-VOS ones.
LAYOUT_DEFAULTS: dict[str, dict[str, dict[str, float]]] = {
    "davis2017": {"graph": {"alpha": 0.7, "beta": 0.3}},
    "davis2016": {"graph": {"alpha": 0.7, "beta": 0.3}},
    "youtube_vos": {"graph": {"alpha": 0.7, "beta": 0.3}},
    "segtrack_v2": {"graph": {"alpha": 0.1, "beta": 0.9}},
    "youtube_objects": {"graph": {"alpha": 0.1, "beta": 0.9}},
    "folder": {"graph": {"alpha": 0.7, "beta": 0.3}},
}


class VideoDataset(Protocol):
    """What every layout's dataset provides."""

    root: Path
    layout: str
    split: str

    @property
    def scorable(self) -> bool: ...

    def video_names(self) -> list[str]: ...

    def video(self, name: str) -> Video: ...

    def videos(self) -> list[Video]: ...


def layout_defaults(layout: str) -> dict[str, dict[str, float]]:
    """A copy of the layout's default settings (LAYOUT_DEFAULTS), safe to change."""
    if layout not in LAYOUT_DEFAULTS:
        raise InputError("layout", f"unknown dataset layout '{layout}' (expected one of {', '.join(LAYOUTS)})")
    return {section: dict(values) for section, values in LAYOUT_DEFAULTS[layout].items()}


def open_dataset(root: str | Path, layout: str, split: str, resolution: str = "480p") -> VideoDataset:
    """A dataset split, checked only for its root; sequences are checked when opened.

    `resolution` is DAVIS's (its 480p / Full-Resolution folders); the other layouts have one.
    """
    if layout == "synthetic":
        layout = "davis2017"
    if layout not in LAYOUTS:
        raise InputError("layout", f"unknown dataset layout '{layout}' (expected one of {', '.join(LAYOUTS)})")
    root = dataset_root(root)
    if layout in ("davis2017", "davis2016"):
        return Dataset(root, layout, split, resolution)
    readers = {"youtube_vos": YouTubeVOSDataset, "segtrack_v2": SegTrackV2Dataset,
               "youtube_objects": YouTubeObjectsDataset, "folder": FolderDataset}
    return readers[layout](root, split)
