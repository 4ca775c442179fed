"""The detect stage: every frame's proposals of one video into one ragged store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from tqdm import tqdm

from stg.datasets import Video, read_frame
from stg.detect.base import FRAMES, FRAMES_AND_PRIORS, PRIORS, DetectBackend, DetectBatch
from stg.errors import InputError
from stg.store import build_store, check_store_matches, store_path
from stg.warp.ops import dequantise

log = logging.getLogger(__name__)

BOX_FORMAT = "xyxy pixel edges (a box over columns 3..5 has x1 = 3, x2 = 6); rows sorted by decreasing score"


def _read_images(video: Video, frames: list[int], size: tuple[int, int]) -> np.ndarray:
    images = np.empty((len(frames), *size, 3), dtype=np.uint8)
    for row, frame in enumerate(frames):
        image = read_frame(video.frame_paths[frame])
        if image.shape[:2] != size:
            raise InputError(video.frame_paths[frame], f"frame size {image.shape[1]}x{image.shape[0]} differs from "
                             f"the warp store's {size[1]}x{size[0]}")
        images[row] = image
    return images


def compute_detect_store(video: Video, warp: zarr.Group, backend: DetectBackend, out: Path,
                         settings: dict[str, Any], key: str = "") -> None:
    """Write `offsets` (T+1), `boxes` (N, 4) float32, `scores` (N,) float32 and, if the backend makes them,
    `masks` (N, H, W) uint8 (one chunk per row); frame t owns rows offsets[t]:offsets[t+1].

    Masks are appended batch by batch, so a long video's masks never sit in memory all at once.
    """
    check_store_matches(warp, store_path(warp), video)
    frame_names = list(warp.attrs["frame_names"])
    height, width = (int(v) for v in warp.attrs["image_size"])
    num_frames = len(frame_names)
    attrs = {"settings": settings, "key": key, "frame_names": frame_names, "image_size": [height, width],
             "video": video.name, "backend": backend.identity(), "warp_key": warp.attrs.get("key"),
             "num_objects": warp.attrs.get("num_objects"), "box_format": BOX_FORMAT, "has_masks": backend.makes_masks}
    log.info("detect %s: %d frames %dx%d with %s", video.name, num_frames, width, height, backend.name)
    reads_frames, reads_priors = (FRAMES, FRAMES_AND_PRIORS), (PRIORS, FRAMES_AND_PRIORS)
    boxes, scores = [], []
    with build_store(out, "detect", attrs) as store:
        masks = store.array("masks", (0, height, width), np.uint8, chunks=(1, height, width)) \
            if backend.makes_masks else None
        with tqdm(total=num_frames, desc=f"detect {video.name}", unit="frame", leave=False) as bar:
            for start in range(0, num_frames, backend.batch_size):
                frames = list(range(start, min(start + backend.batch_size, num_frames)))
                batch = DetectBatch(
                    video.name, frames,
                    images=_read_images(video, frames, (height, width)) if backend.reads in reads_frames else None,
                    priors=dequantise(warp["priors"][frames[0]:frames[-1] + 1]) if backend.reads in reads_priors
                    else None,
                )
                for detections in backend.detect(batch):
                    boxes.append(detections.boxes)
                    scores.append(detections.scores)
                    if masks is not None and len(detections):
                        masks.append(detections.masks, axis=0)
                bar.update(len(frames))
        store.ragged("boxes", boxes, np.float32)
        store.ragged("scores", scores, np.float32)
        if masks is not None and masks.shape[0] != sum(len(b) for b in boxes):
            raise RuntimeError(f"detect {video.name}: {masks.shape[0]} masks for {sum(len(b) for b in boxes)} boxes")
    total = sum(len(b) for b in boxes)
    log.info("detect %s: %d proposals (%.1f per frame)", video.name, total, total / max(num_frames, 1))
