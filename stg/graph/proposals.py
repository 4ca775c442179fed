"""Where the graph's proposals come from: the segment store, or segmentation inside the frame loop.

`cached` reads the segment stage's masks, whose Q is the warp stage's (first-frame) propagation. `online`
segments the cached detection boxes in the graph's own loop with Q_t = the previous final masks warped to
t, as the paper defines Q, so the proposals follow the tracked object instead of a drifting prior; each
object's own Q box is added as a proposal so that an object the detector misses is still re-segmented.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import zarr

from stg.graph.boxes import mask_box
from stg.graph.motion import assign_proposals, graph_owners
from stg.graph.tracker import Proposals
from stg.segment.base import SegmentBackend
from stg.segment.prior import box_priors
from stg.store import read_ragged

PROPOSAL_SOURCES = ("cached", "online")


class ProposalSource(Protocol):
    def __call__(self, frame: int, image: np.ndarray, warped: np.ndarray, predicted: np.ndarray | None = None
                 ) -> Proposals:
        """Frame t's proposals given its RGB image, the objects' warped masks Q_t (K, H, W) in [0, 1] and their
        predicted boxes p_t (K, 4), which a source may use to skip proposals no object can take."""
        ...


class CachedProposals:
    """The segment store's rows of each frame."""

    def __init__(self, segment: zarr.Group) -> None:
        self.segment, self.offsets = segment, segment["offsets"][:]

    def __call__(self, frame: int, image: np.ndarray, warped: np.ndarray, predicted: np.ndarray | None = None
                 ) -> Proposals:
        return Proposals(np.asarray(read_ragged(self.segment, "boxes", frame, self.offsets), dtype=np.float32),
                         np.asarray(read_ragged(self.segment, "scores", frame, self.offsets), dtype=np.float32),
                         read_ragged(self.segment, "masks", frame, self.offsets).astype(np.float32) / 255.0)


def q_boxes(warped: np.ndarray, level: float = 0.5) -> np.ndarray:
    """(M, 4) boxes of the objects' Q_t >= level (objects whose Q is empty give none)."""
    boxes = [box for box in (mask_box(plane >= level) for plane in warped) if not np.isnan(box[0])]
    return np.stack(boxes).astype(np.float32) if boxes else np.zeros((0, 4), np.float32)


class OnlineProposals:
    """Detection boxes (detect store) plus each object's Q box, segmented with the tracked Q_t."""

    def __init__(self, detect: zarr.Group, segmenter: SegmentBackend, q_mode: str = "union",
                 add_q_boxes: bool = True, q_box_score: float = 1.0, join_iou: float = 0.0) -> None:
        """`join_iou`: the graph's (stg.graph.motion.graph_owners): boxes no object can take are not segmented."""
        self.detect, self.offsets = detect, detect["offsets"][:]
        self.segmenter, self.q_mode, self.add_q_boxes, self.q_box_score = segmenter, q_mode, add_q_boxes, q_box_score
        self.join_iou = join_iou

    def __call__(self, frame: int, image: np.ndarray, warped: np.ndarray, predicted: np.ndarray | None = None
                 ) -> Proposals:
        boxes = np.asarray(read_ragged(self.detect, "boxes", frame, self.offsets), dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(read_ragged(self.detect, "scores", frame, self.offsets), dtype=np.float32)
        if self.add_q_boxes:
            own = q_boxes(warped)
            boxes = np.concatenate([own, boxes])
            scores = np.concatenate([np.full(len(own), self.q_box_score, np.float32), scores])
        if predicted is not None and len(boxes):
            # A box that is no node of any object's graph (overlapping no p_t, or its own object's by less than
            # join_iou: stg.graph.motion) is never selected: not segmenting it changes no result and saves most of
            # the segmenter's time. A box's owner depends on its own overlaps only, so the others' stay the same.
            reachable = graph_owners(assign_proposals(boxes, predicted), boxes, predicted, self.join_iou) >= 0
            boxes, scores = boxes[reachable], scores[reachable]
        if len(boxes) == 0:
            return Proposals(boxes, scores, np.zeros((0, *image.shape[:2]), np.float32))
        planes, plane_of_box = box_priors(warped, boxes, self.q_mode)
        masks = self.segmenter.segment(image, boxes, planes, plane_of_box)
        return Proposals(boxes, scores, masks.astype(np.float32) / 255.0)
