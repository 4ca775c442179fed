"""The warp stage: per-object priors Q_t for every frame, from a pluggable mask source.

Q_t = backward_warp(S_{t-1}, backward flow t -> t-1), down-weighted where the flow fails the
forward-backward check. S_{t-1} comes from a source:
- `first_frame`: the stage's own previous prior (thresholded when `rebinarize`), i.e. frame 0's
  ground truth carried through the whole video;
- `previous_pass`: a previous pass's final label map of frame t-1 (one-step warp; refinement).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import zarr
from tqdm import tqdm

from stg.flow.store import read_flow
from stg.settings import StageSettings
from stg.store import build_store
from stg.warp.ops import (
    apply_seed,
    backward_warp,
    dequantise,
    occlusion_mask,
    one_hot,
    priors_to_labels,
    quantise,
    seed_starts,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarpSettings(StageSettings):
    """`stages.warp`, validated and completed by the config schema (its only defaults)."""

    stage = "warp"
    source: str
    rebinarize: bool
    occlusion_check: bool
    fb_alpha: float
    fb_beta: float
    occluded_weight: float


@dataclass(frozen=True)
class PropagateSettings(StageSettings):
    """`stages.propagate`, validated and completed by the config schema."""

    stage = "propagate"
    threshold: float


class MaskSource(Protocol):
    """Gives the masks of frame t-1 that are warped into frame t."""

    name: str

    def masks_before(self, frame: int, previous_prior: np.ndarray) -> np.ndarray:
        ...

    def identity(self) -> dict[str, Any]:
        ...


@dataclass
class FirstFrameSource:
    """Chain the stage's own priors from frame 0's ground truth."""

    rebinarize: bool = True
    threshold: float = 0.5
    name: str = "first_frame"

    def masks_before(self, frame: int, previous_prior: np.ndarray) -> np.ndarray:
        if not self.rebinarize:
            return previous_prior
        return one_hot(priors_to_labels(previous_prior, self.threshold), previous_prior.shape[0])

    def identity(self) -> dict[str, Any]:
        return {"source": self.name, "rebinarize": self.rebinarize}


@dataclass
class LabelStoreSource:
    """Warp another store's label maps one step (a previous pass's results)."""

    labels: zarr.Array
    store: str
    name: str = "previous_pass"

    def masks_before(self, frame: int, previous_prior: np.ndarray) -> np.ndarray:
        if frame - 1 == 0:
            return previous_prior  # frame 0 is the ground truth itself
        return one_hot(np.asarray(self.labels[frame - 1]), previous_prior.shape[0])

    def identity(self) -> dict[str, Any]:
        return {"source": self.name, "store": self.store}


def warp_step(masks: np.ndarray, backward: np.ndarray, forward: np.ndarray,
              settings: WarpSettings | Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """One frame: (K, H, W) masks of t-1 -> priors of t, plus the occlusion mask of t.

    `settings` may be a warp store's recorded settings dict (the graph stage passes those): omitted
    ones take the schema's defaults.
    """
    if not isinstance(settings, WarpSettings):
        settings = WarpSettings.from_dict(settings)
    prior = backward_warp(masks, backward)
    if settings.occlusion_check:
        occluded = occlusion_mask(backward, forward, settings.fb_alpha, settings.fb_beta)
        if settings.occluded_weight != 1.0:
            prior[:, occluded] *= settings.occluded_weight
    else:
        occluded = np.zeros(backward.shape[:2], dtype=bool)
    return np.clip(prior, 0.0, 1.0), occluded


def compute_warp_store(first_labels: np.ndarray | Mapping[int, np.ndarray], num_objects: int, flow: zarr.Group,
                       source: MaskSource, out: Path, settings: dict[str, Any], key: str = "", video: str = "",
                       extra_attrs: dict[str, Any] | None = None) -> None:
    """Write `priors` (T, K, H, W) uint8 and `occlusion` (T, H, W) uint8 for one video.

    `first_labels` is frame 0's label map (every object starts there: DAVIS) or a seed schedule {frame: seed
    label map} (stg.datasets.seed_schedule): an object's prior is empty before its start frame and its seed mask
    at it (apply_seed), and is warped on from there.
    """
    warp = WarpSettings.from_dict(settings)  # bad settings fail before the store exists
    seeds = dict(first_labels) if isinstance(first_labels, Mapping) else {0: first_labels}
    if not seeds:
        raise ValueError(f"warp {video}: no object starts anywhere (empty seed schedule)")
    frame_names = list(flow.attrs["frame_names"])
    height, width = next(iter(seeds.values())).shape
    num_frames = len(frame_names)
    if list(flow.attrs["image_size"]) != [height, width]:
        raise ValueError(f"flow store size {flow.attrs['image_size']} differs from the mask size {[height, width]}")
    attrs = {"settings": settings, "key": key, "frame_names": frame_names, "image_size": [height, width],
             "video": video, "num_objects": num_objects, "source": source.identity(),
             "flow_key": flow.attrs.get("key"), "backend": flow.attrs.get("backend"), **(extra_attrs or {})}
    starts = seed_starts(seeds, num_objects)
    if any(start > 0 for start in starts.values()):  # recorded only where objects start late (DAVIS: as before)
        attrs["object_starts"] = {str(label): start for label, start in starts.items()}
    log.info("warp %s: %d frames, %d object(s), source %s", video, num_frames, num_objects, source.name)
    with build_store(out, "warp", attrs) as store:
        priors = store.array("priors", (num_frames, num_objects, height, width), np.uint8)
        occlusion = store.array("occlusion", (num_frames, height, width), np.uint8)
        prior = one_hot(seeds[0], num_objects) if 0 in seeds else np.zeros((num_objects, height, width), np.float32)
        priors[0] = quantise(prior)
        for frame in tqdm(range(1, num_frames), desc=f"warp {video}", unit="frame", leave=False):
            masks = source.masks_before(frame, prior)
            backward, forward = read_flow(flow, "backward", frame - 1), read_flow(flow, "forward", frame - 1)
            prior, occluded = warp_step(masks, backward, forward, warp)
            if frame in seeds:  # objects that start here: their seed masks
                prior = apply_seed(prior, seeds[frame])
            priors[frame] = quantise(prior)
            occlusion[frame] = occluded.astype(np.uint8)


def compute_propagate_store(warp: zarr.Group, out: Path, settings: dict[str, Any], key: str = "") -> None:
    """The flow-propagation baseline: per-frame arg-max of the warped priors."""
    frame_names = list(warp.attrs["frame_names"])
    height, width = warp.attrs["image_size"]
    threshold = PropagateSettings.from_dict(settings).threshold
    attrs = {"settings": settings, "key": key, "frame_names": frame_names, "image_size": [height, width],
             "video": warp.attrs.get("video"), "num_objects": warp.attrs["num_objects"],
             "warp_key": warp.attrs.get("key"), "method": "propagate"}
    with build_store(out, "labels", attrs) as store:
        labels = store.array("labels", (len(frame_names), height, width), np.uint8)
        for frame in range(len(frame_names)):
            labels[frame] = priors_to_labels(dequantise(warp["priors"][frame]), threshold)
