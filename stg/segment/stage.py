"""The segment stage: a soft mask for every detection box of every frame, into one ragged store.

Store: `offsets` (T+1), `boxes` (N, 4) and `scores` (N) copied from the detect store, `masks`
(N, H, W) uint8 probabilities in the full frame, one chunk per proposal (readers fetch only the
proposals they need). When the video has ground truth beyond the first frame, the proposal report
(box recall, oracle J) is computed on the fly and stored in the attributes as `proposal_report`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from tqdm import tqdm

from stg.datasets import Video, read_annotation, read_frame
from stg.errors import StoreError
from stg.proposals_report import ReportAccumulator, ground_truth_frames
from stg.segment.base import SegmentBackend
from stg.segment.prior import box_priors
from stg.settings import StageSettings
from stg.store import build_store, check_store_matches, read_array
from stg.warp.ops import dequantise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentSettings(StageSettings):
    """The stage's own settings beyond the backend's (`stages.segment`, completed by the schema)."""

    stage = "segment"
    q_mode: str


def check_inputs(video: Video, detect: zarr.Group, warp: zarr.Group, detect_path: str, warp_path: str
                 ) -> tuple[int, int]:
    """The detect and warp stores must describe this video's frames at one size; returns (H, W)."""
    for path, store in ((detect_path, detect), (warp_path, warp)):
        check_store_matches(store, path, video)
    height, width = (int(v) for v in warp.attrs["image_size"])
    if [int(v) for v in detect.attrs["image_size"]] != [height, width]:
        raise StoreError(f"{detect_path}: image size {detect.attrs['image_size']} differs from the warp store's "
                         f"{[height, width]} ({warp_path})")
    offsets = detect["offsets"]
    if offsets.shape != (len(video.frame_names) + 1,):
        raise StoreError(f"{detect_path}: offsets has shape {offsets.shape}, expected ({len(video.frame_names) + 1},)")
    if detect["boxes"].shape != (int(offsets[-1]), 4) or detect["scores"].shape != (int(offsets[-1]),):
        raise StoreError(f"{detect_path}: boxes {detect['boxes'].shape} / scores {detect['scores'].shape} do not match "
                         f"offsets[-1] = {int(offsets[-1])}")
    return height, width


def compute_segment_store(video: Video, detect: zarr.Group, warp: zarr.Group, backend: SegmentBackend, out: Path,
                          settings: dict[str, Any], key: str = "", detect_path: str = "detect",
                          warp_path: str = "warp") -> dict[str, Any] | None:
    """Write the store; returns the proposal report (None when the video has no ground truth to score)."""
    height, width = check_inputs(video, detect, warp, detect_path, warp_path)
    q_mode = SegmentSettings.from_dict(settings).q_mode
    offsets = read_array(detect, "offsets").astype(np.int64)  # a damaged chunk: DamagedStoreError naming the store
    boxes, scores = read_array(detect, "boxes").astype(np.float32), read_array(detect, "scores").astype(np.float32)
    names = video.frame_names
    per_frame = [slice(int(offsets[t]), int(offsets[t + 1])) for t in range(len(names))]
    truth = ground_truth_frames(video)
    accumulator = ReportAccumulator(video.name, video.num_objects) if truth else None
    attrs: dict[str, Any] = {
        "settings": settings, "key": key, "frame_names": names, "image_size": [height, width], "video": video.name,
        "backend": backend.identity(), "detect_key": detect.attrs.get("key"), "warp_key": warp.attrs.get("key"),
        "detect_backend": detect.attrs.get("backend"), "q_mode": q_mode,
        "convention": "frame t owns rows offsets[t]:offsets[t+1]; boxes xyxy pixels; masks uint8 probability*255",
    }
    log.info("segment %s: %d frames, %d proposals with %s (q_mode %s)", video.name, len(names), len(boxes),
             backend.name, q_mode)
    with build_store(out, "segment", attrs) as store:
        store.ragged("boxes", [boxes[s] for s in per_frame], np.float32)
        store.ragged("scores", [scores[s] for s in per_frame], np.float32)
        masks = store.array("masks", (len(boxes), height, width), np.uint8, chunks=(1, height, width))
        for index, rows in enumerate(tqdm(per_frame, desc=f"segment {video.name}", unit="frame", leave=False)):
            frame_masks = np.zeros((0, height, width), dtype=np.uint8)
            if rows.stop > rows.start:
                planes, plane_of_box = box_priors(dequantise(warp["priors"][index]), boxes[rows], q_mode)
                frame_masks = backend.segment(read_frame(video.frame_paths[index]), boxes[rows], planes, plane_of_box)
                masks[rows] = frame_masks
            if accumulator is not None:
                labels = (read_annotation(truth[index], video.layout, shape=(height, width))
                          if index in truth else None)
                accumulator.add_frame(names[index], boxes[rows], frame_masks, labels)
        stats = getattr(backend, "stats", None)
        if stats:
            attrs["backend_stats"] = dict(stats)
        report = accumulator.result() if accumulator is not None else None
        if report is not None:
            attrs["proposal_report"] = report  # build_store writes `attrs` when the block ends
            log.info("segment %s: recall@%.1f %.3f, oracle J %.3f over %d object-frames", video.name,
                     report["iou_threshold"], report["recall"] or 0.0, report["oracle_j"] or 0.0,
                     report["object_frames"])
    return report
