"""The graph stage: one video's label maps from its proposals (segment store), priors (warp) and flow.

Sequential over frames: Q_t is the previous frame's final masks (or, with `q_source: selected`, the masks Eq. 6
selected, before the temporal graph) warped to t with the cached backward flow (the warp stage's own step and
settings), so every frame builds on the graph's own results.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from tqdm import tqdm

from stg.datasets import Video, read_frame, seed_labels, seed_schedule
from stg.features.base import FeatureBackend
from stg.flow.store import read_flow
from stg.graph.boxes import EMPTY_BOX
from stg.graph.proposals import CachedProposals, OnlineProposals, ProposalSource
from stg.graph.settings import GraphSettings
from stg.graph.tracker import NOT_STARTED, Q_NODE, GraphTracker
from stg.segment.base import SegmentBackend
from stg.store import build_store, check_store_matches, store_path
from stg.warp.ops import one_hot, quantise
from stg.warp.stage import warp_step

log = logging.getLogger(__name__)


def check_upstream(video: Video, **stores: zarr.Group) -> None:
    """Every upstream store must describe this video's frames, or the caches are mixed up."""
    for name, store in stores.items():
        check_store_matches(store, f"{name} store {store_path(store)}", video)


def compute_graph_store(video: Video, proposals: zarr.Group, warp: zarr.Group, flow: zarr.Group,
                        features: FeatureBackend | None, settings: dict[str, Any], out: Path, key: str = "",
                        extra_attrs: dict[str, Any] | None = None, segmenter: SegmentBackend | None = None,
                        segment_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a labels store (`labels` plus the graph's per-frame details) for one video; returns a summary.

    `proposals` is the segment store (proposals: cached) or the detect store (online: `segmenter` segments
    its boxes in the frame loop with the tracked Q_t, seeded as `segment_settings` say).
    """
    check_upstream(video, **{str(proposals.attrs.get("stage", "proposals")): proposals}, warp=warp, flow=flow)
    graph = GraphSettings.from_dict(settings)
    seeds, num_objects = seed_schedule(video), video.num_objects  # DAVIS: {0: first mask}, all objects at 0
    height, width = next(iter(seeds.values())).shape
    first_labels = seed_labels(seeds, 0, (height, width))
    frames = video.frame_names
    count = len(frames)
    object_starts = video.object_starts
    starts = np.array([object_starts.get(k, 0) for k in range(1, num_objects + 1)], dtype=np.int64)
    warp_settings = dict(warp.attrs.get("settings", {}))
    if graph.proposals == "online":
        if segmenter is None:
            raise ValueError("online proposals need a segment backend")
        source: ProposalSource = OnlineProposals(proposals, segmenter, (segment_settings or {}).get("q_mode", "union"),
                                                 graph.q_boxes, join_iou=graph.join_iou)
    else:
        source = CachedProposals(proposals)
    tracker = GraphTracker(graph, features, num_objects, starts)
    started = time.perf_counter()
    no_proposal = np.zeros(num_objects, dtype=np.int64)
    lost = np.zeros(num_objects, dtype=np.int64)
    attrs = {"settings": settings, "graph": graph.as_dict(), "key": key, "frame_names": frames,
             "image_size": [height, width], "video": video.name, "num_objects": num_objects, "method": "graph",
             "backend": features.identity() if features is not None else None,
             "upstream": {name: store.attrs.get("key") for name, store in
                          ((proposals.attrs.get("stage"), proposals), ("warp", warp), ("flow", flow))},
             "segmenter": segmenter.identity() if segmenter is not None and graph.proposals == "online" else None,
             "warp_source": warp.attrs.get("source"), **(extra_attrs or {})}
    if starts.any():  # recorded only where objects start late (DAVIS: as before)
        attrs["object_starts"] = {str(k + 1): int(start) for k, start in enumerate(starts)}
    log.info("graph %s: %d frames, %d object(s), features %s", video.name, count, num_objects,
             features.name if features is not None else "none")
    with build_store(out, "labels", attrs) as store:
        labels = store.array("labels", (count, height, width), np.uint8)
        soft = store.array("soft", (count, num_objects, height, width), np.uint8)
        predicted = store.array("predicted_boxes", (count, num_objects, 4), np.float32, chunks=(count, num_objects, 4))
        final_boxes = store.array("boxes", (count, num_objects, 4), np.float32, chunks=(count, num_objects, 4))
        chosen = store.array("chosen", (count, num_objects), np.int32, chunks=(count, num_objects))
        nodes = store.array("nodes", (count, num_objects), np.int32, chunks=(count, num_objects))
        fallback = store.array("no_proposal", (count, num_objects), np.uint8, chunks=(count, num_objects))
        table = {name: np.zeros(array.shape, array.dtype) for name, array in
                 (("predicted", predicted), ("boxes", final_boxes), ("chosen", chosen), ("nodes", nodes),
                  ("no_proposal", fallback))}
        image = read_frame(video.frame_paths[0])
        tracker.start(image, first_labels)
        previous = np.where(first_labels <= num_objects, first_labels, 0).astype(np.uint8)
        labels[0] = previous
        soft[0] = quantise(one_hot(first_labels, num_objects))
        table["predicted"][0] = np.nan
        table["boxes"][0] = np.stack([tracker.history[k][-1] if tracker.history[k] else EMPTY_BOX
                                      for k in range(num_objects)]) if num_objects else 0
        table["chosen"][0] = np.where(starts > 0, NOT_STARTED, Q_NODE)
        for t in tqdm(range(1, count), desc=f"graph {video.name}", unit="frame", leave=False):
            warped, _ = warp_step(one_hot(previous, num_objects), read_flow(flow, "backward", t - 1),
                                  read_flow(flow, "forward", t - 1), warp_settings)
            image = read_frame(video.frame_paths[t])
            result = tracker.step(t, image, source(t, image, warped, tracker.predicted_boxes(warped)), warped,
                                  seed=seeds.get(t))
            previous = result.q_labels
            labels[t] = result.labels
            soft[t] = quantise(result.soft)
            table["predicted"][t], table["boxes"][t] = result.predicted, result.boxes
            table["chosen"][t], table["nodes"][t] = result.chosen, result.nodes
            table["no_proposal"][t] = result.no_proposal
            no_proposal += result.no_proposal
            lost += np.isnan(result.boxes[:, 0]) & (starts <= t)  # before its start an object is not lost
        predicted[:], final_boxes[:], chosen[:] = table["predicted"], table["boxes"], table["chosen"]
        nodes[:], fallback[:] = table["nodes"], table["no_proposal"]
        seconds = time.perf_counter() - started
        summary = {"no_proposal_frames": no_proposal.tolist(), "lost_frames": lost.tolist(),
                   "frames": count, "seconds": round(seconds, 3), "fps": round(count / max(seconds, 1e-9), 3)}
        store.group.attrs.update({"no_proposal_frames": summary["no_proposal_frames"],
                                  "lost_frames": summary["lost_frames"]})
    log.info("graph %s: %.1f frames/s; frames without proposal per object %s, lost %s", video.name,
             summary["fps"], summary["no_proposal_frames"], summary["lost_frames"])
    return summary
