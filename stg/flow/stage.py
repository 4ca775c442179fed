"""The flow stage: forward and backward flow of every consecutive frame pair into one store."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from stg.datasets import Video, read_frames
from stg.flow.base import FlowBackend
from stg.flow.store import INT16_MAX, OFFSET, FlowWriter
from stg.settings import StageSettings
from stg.store import build_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowStoreSettings(StageSettings):
    """How `stages.flow` stores its flow (see stg.flow.store), validated and completed by the config schema."""

    stage = "flow"
    encoding: str
    int16_scale: int


def compute_flow_store(video: Video, backend: FlowBackend, out: Path, settings: dict[str, Any],
                       key: str = "", batch_size: int | None = None) -> None:
    """Write `forward` (t -> t+1) and `backward` (t+1 -> t) flow, (T-1, H, W, 2), in the settings' encoding
    (default: int16, 1/8 px bins; read them with stg.flow.store.read_flow).

    Frames are read up front so that a bad frame fails before any flow is computed. Pairs go to the
    backend `batch_size` at a time (default: the backend's own setting).
    """
    stored = FlowStoreSettings.from_dict(settings)
    batch_size = batch_size or backend.batch_size
    frames = read_frames(video)
    num_frames, height, width = frames.shape[:3]
    log.info("flow %s: %d frames %dx%d with %s, stored as %s", video.name, num_frames, width, height, backend.name,
             stored.encoding)
    pairs = max(num_frames - 1, 0)
    attrs = {
        "settings": settings, "key": key, "frame_names": video.frame_names, "image_size": [height, width],
        "video": video.name, "backend": backend.identity(),
        "convention": "forward[t]: frame t -> t+1, backward[t]: frame t+1 -> t; [..., 0] = dx, [..., 1] = dy",
    }
    with build_store(out, "flow", attrs) as store:
        writer = FlowWriter(store, pairs, height, width, stored.encoding, stored.int16_scale)
        with tqdm(total=pairs, desc=f"flow {video.name}", unit="pair", leave=False) as bar:
            for start in range(0, pairs, batch_size):
                stop = min(start + batch_size, pairs)
                sources, targets = frames[start:stop], frames[start + 1:stop + 1]
                both = backend.flow(np.concatenate([sources, targets]), np.concatenate([targets, sources]))
                count = stop - start
                writer.write("forward", start, both[:count])
                writer.write("backward", start, both[count:])
                bar.update(count)
        encoding = writer.finish()
        clipped = sum(entry.get("clipped", 0) for entry in encoding.values())
        if clipped:
            log.warning("flow %s: %d flow values beyond the int16 range (+-%.1f px) or not finite were clipped",
                        video.name, clipped, (INT16_MAX + OFFSET) / stored.int16_scale)
