"""The flow stage: forward and backward flow of every consecutive frame pair into one store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from stg.datasets import Video, read_frames
from stg.flow.base import FlowBackend
from stg.store import build_store

log = logging.getLogger(__name__)


def compute_flow_store(video: Video, backend: FlowBackend, out: Path, settings: dict[str, Any],
                       key: str = "", batch_size: int | None = None) -> None:
    """Write `forward` (t -> t+1) and `backward` (t+1 -> t) flow, (T-1, H, W, 2) float16.

    Frames are read up front so that a bad frame fails before any flow is computed. Pairs go to the
    backend `batch_size` at a time (default: the backend's own setting).
    """
    batch_size = batch_size or backend.batch_size
    frames = read_frames(video)
    num_frames, height, width = frames.shape[:3]
    log.info("flow %s: %d frames %dx%d with %s", video.name, num_frames, width, height, backend.name)
    pairs = max(num_frames - 1, 0)
    attrs = {
        "settings": settings, "key": key, "frame_names": video.frame_names, "image_size": [height, width],
        "video": video.name, "backend": backend.identity(),
        "convention": "forward[t]: frame t -> t+1, backward[t]: frame t+1 -> t; [..., 0] = dx, [..., 1] = dy",
    }
    with build_store(out, "flow", attrs) as store:
        forward = store.array("forward", (pairs, height, width, 2), np.float16)
        backward = store.array("backward", (pairs, height, width, 2), np.float16)
        with tqdm(total=pairs, desc=f"flow {video.name}", unit="pair", leave=False) as bar:
            for start in range(0, pairs, batch_size):
                stop = min(start + batch_size, pairs)
                sources, targets = frames[start:stop], frames[start + 1:stop + 1]
                both = backend.flow(np.concatenate([sources, targets]), np.concatenate([targets, sources]))
                count = stop - start
                forward[start:stop] = both[:count].astype(np.float16)
                backward[start:stop] = both[count:].astype(np.float16)
                bar.update(count)
