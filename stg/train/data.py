"""Training videos in memory: frames, ground truth, and each object's previous mask warped by the cached flow.

I/O lives here; the samplers work on the arrays. The previous frame's ground truth warped to frame t with
the flow stage's backward flow is exactly the Q a tracker sees when it follows the object perfectly, so
the deformations applied on top model only the tracker's own errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stg.datasets import VOID_LABEL, Video, open_dataset, read_annotation, read_frames
from stg.errors import InputError
from stg.flow.store import read_flow
from stg.store import check_store_matches, open_store
from stg.warp.ops import backward_warp, one_hot, quantise

log = logging.getLogger(__name__)

MIN_OBJECT_PIXELS = 64  # objects smaller than this in a frame give no training sample there


@dataclass(frozen=True)
class TrainingVideo:
    name: str
    frames: np.ndarray      # (T, H, W, 3) uint8 RGB
    labels: np.ndarray      # (T, H, W) uint8 object ids, 0 background, 255 void
    warped: np.ndarray      # (T, K, H, W) uint8 0..255: object k of frame t-1 warped to t (frame 0: its own mask)
    num_objects: int

    def samples(self) -> list[tuple[int, int]]:
        """(frame, object) pairs with the object visible, frames >= 1 (frame 0 has no previous mask)."""
        pairs = []
        for t in range(1, len(self.frames)):
            counts = np.bincount(self.labels[t].ravel(), minlength=256)
            pairs += [(t, k) for k in range(1, self.num_objects + 1) if counts[k] >= MIN_OBJECT_PIXELS]
        return pairs


def load_training_video(video: Video, flow_path: Path | None) -> TrainingVideo:
    """Read every frame and annotation of a fully annotated video and warp each mask one step forward."""
    frames = read_frames(video)
    shape = frames.shape[1:3]
    missing = [name for name in video.frame_names if name not in video.annotation_paths]
    if missing:
        raise InputError(video.frame_paths[0].parent, f"training needs every frame annotated; {len(missing)} frame(s) "
                         f"of '{video.name}' have no annotation (first: {missing[0]})")
    labels = np.stack([read_annotation(video.annotation_paths[name], video.layout, shape=shape)
                       for name in video.frame_names])
    num_objects = int(labels[labels != VOID_LABEL].max(initial=0))
    if num_objects == 0:
        raise InputError(video.annotation_paths[video.frame_names[0]], f"no object annotated in '{video.name}'")
    warped = np.zeros((len(frames), num_objects, *shape), dtype=np.uint8)
    warped[0] = quantise(one_hot(labels[0], num_objects))
    store = None
    if flow_path is not None:
        store = open_store(flow_path, "flow")
        check_store_matches(store, flow_path, video)
    for t in range(1, len(frames)):
        previous = one_hot(labels[t - 1], num_objects)
        warped[t] = quantise(backward_warp(previous, read_flow(store, "backward", t - 1)) if store is not None
                             else previous)
    return TrainingVideo(video.name, frames, labels, warped, num_objects)


def load_training_split(root: Path, layout: str, split: str, flow_stores: dict[str, Path] | None = None,
                        resolution: str = "480p") -> list[TrainingVideo]:
    """Every video of a split; `flow_stores` maps video name -> flow store (None: Q is the unwarped previous mask)."""
    dataset = open_dataset(root, layout, split, resolution)
    names = dataset.video_names()
    if not names:
        raise InputError(dataset.split_file, f"split '{split}' lists no video")
    videos = []
    for name in tqdm(names, desc=f"load {split}", unit="video"):
        flow = (flow_stores or {}).get(name)
        if flow_stores is not None and flow is None:
            raise InputError(dataset.split_file, f"no flow store given for training video '{name}'")
        videos.append(load_training_video(dataset.video(name), None if flow is None else Path(flow)))
    log.info("loaded %d training videos (%d frames) of %s/%s", len(videos), sum(len(v.frames) for v in videos),
             root, split)
    return videos
