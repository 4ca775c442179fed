"""One video through the graph, frame by frame: motion model, spatial graph, selection, temporal graph.

The tracker holds each object's state (box history, temporal memory) and turns one frame's proposals
and warped masks Q into a label map. It does no I/O: the stage feeds it frames and store contents.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from stg.features.base import FeatureBackend
from stg.graph.boxes import EMPTY_BOX, expand_box, mask_box
from stg.graph.crops import Window, crop, crop_resize, paste
from stg.graph.fragments import drop_fragments
from stg.graph.labels import resolve_labels
from stg.graph.motion import assign_proposals, flow_shifted_box, graph_owners, predict_box
from stg.graph.selection import select, selection_scores
from stg.graph.settings import GraphSettings
from stg.graph.spatial import cut_weak_edges, edge_weights, node_support, silence_duplicates, spatial_update
from stg.graph.temporal import TemporalMemory, temporal_message, temporal_update

log = logging.getLogger(__name__)

Q_NODE = -1  # chosen index of an object whose only node was its warped mask Q


@dataclass
class Proposals:
    """One frame's proposals: (N, 4) xyxy boxes, (N,) detection scores, (N, H, W) soft masks in [0, 1]."""

    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass
class FrameResult:
    labels: np.ndarray               # (H, W) uint8
    soft: np.ndarray                 # (K, H, W) float32 per-object soft scores of the final masks
    predicted: np.ndarray            # (K, 4) p_t (the previous box when the motion model is off)
    chosen: np.ndarray               # (K,) proposal row within the frame, Q_NODE, or -2 when lost
    nodes: np.ndarray                # (K,) spatial graph size
    no_proposal: np.ndarray          # (K,) bool: the object fell back to its warped mask Q
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # (K, 4) final boxes
    q_labels: np.ndarray | None = None  # (H, W) uint8: the map Q_{t+1} warps (labels, or the selected masks' map)


LOST = -2
NOT_STARTED = -3  # chosen index of an object before its start frame (a late object: nothing there yet)


def apply_seed(masks: np.ndarray, scores: np.ndarray, seeded: np.ndarray, starting: np.ndarray) -> None:
    """In place: the seed's pixels belong to the objects it starts, whose (K, H, W) masks and scores become it."""
    covered = seeded.any(axis=0)
    masks[:, covered] = False
    scores[:, covered] = 0.0
    masks[starting], scores[starting] = seeded[starting], seeded[starting].astype(np.float32)


class GraphTracker:
    """Sequential STG-Net inference for one video with K objects."""

    def __init__(self, settings: GraphSettings, features: FeatureBackend | None, num_objects: int,
                 starts: Sequence[int] | None = None) -> None:
        """`starts[k]`: the frame where object k + 1 starts (default: all at frame 0, DAVIS). Before it the object
        is absent (no proposals, empty mask, chosen NOT_STARTED); at it the seed given to `step` is its mask."""
        if features is None and settings.needs_features:
            raise ValueError("the spatial and temporal graphs need a features backend")
        self.settings, self.features, self.num_objects = settings, features, num_objects
        self.starts = np.zeros(num_objects, np.int64) if starts is None else np.asarray(starts, np.int64)
        if self.starts.shape != (num_objects,):
            raise ValueError(f"starts has {self.starts.shape} entries for {num_objects} object(s)")
        self.history: list[list[np.ndarray]] = [[] for _ in range(num_objects)]
        self.q_sources: np.ndarray | None = None  # (K, H, W) the masks Q_{t+1} warps (motion_source: flow_shift)
        self.memories = [TemporalMemory(settings.memory, settings.memory_window) for _ in range(num_objects)]

    # ------------------------------------------------------------------ frame 0

    def start(self, image: np.ndarray, labels: np.ndarray) -> None:
        """Frame 0: the ground truth seeds the box histories and the temporal memories (of the objects it holds;
        an object starting later is seeded by `step` at its start frame)."""
        masks = labels[None] == np.arange(1, self.num_objects + 1)[:, None, None]
        self._remember_boxes(masks)
        self._remember_q_sources(labels)
        if self.settings.temporal:
            for obj, mask in enumerate(masks):
                if mask.any():
                    self._remember_mask(0, obj, mask, self._key_window(image, mask))

    def started(self, frame: int) -> np.ndarray:
        """(K,) bool: the objects that have started by `frame` (their start frame included)."""
        return self.starts <= frame

    # ------------------------------------------------------------------ frames t >= 1

    def predicted_boxes(self, warped: np.ndarray | None = None) -> np.ndarray:
        """p_t of every object, or its previous box with the motion model off; NaNs if never seen.

        `motion_source: flow` takes B(Q_t), the box of the previous result warped by the optical flow (the motion of
        the object's own pixels), where Q_t has pixels; `flow_shift` the previous box moved by the shift of the
        centroid of the mask Q_t warps (stg.graph.motion.flow_shifted_box), where both have pixels; otherwise, and
        with `boxes`, Eq. 2 over the previous boxes.
        """
        s = self.settings
        boxes = np.tile(EMPTY_BOX, (self.num_objects, 1))
        for obj, history in enumerate(self.history):
            if not history:
                continue
            if not s.motion:
                boxes[obj] = history[-1]
                continue
            flow_box = EMPTY_BOX
            if s.motion_source == "flow" and warped is not None:
                flow_box = mask_box(warped[obj] >= s.q_threshold)
            elif s.motion_source == "flow_shift" and warped is not None and self.q_sources is not None:
                q_binary = warped[obj] >= s.q_threshold
                if q_binary.any() and self.q_sources[obj].any():
                    flow_box = flow_shifted_box(history[-1], self.q_sources[obj], q_binary)
            boxes[obj] = (flow_box if not np.isnan(flow_box).any()
                          else predict_box(history, s.motion_history, s.motion_size_history, s.motion_velocity))
        return boxes

    def step(self, frame: int, image: np.ndarray, proposals: Proposals, warped: np.ndarray,
             seed: np.ndarray | None = None) -> FrameResult:
        """One frame: proposals and Q (K, H, W) soft warped masks -> the frame's label map and details.

        `seed` (a label map, stg.datasets.read_seed_mask) starts the objects it holds at this frame: their masks are
        the seed (chosen Q_NODE, as frame 0's ground truth), which also seeds their motion history and temporal
        memory. Objects that start after `frame` take no proposal and stay empty (chosen NOT_STARTED).
        """
        s = self.settings
        height, width = warped.shape[1:]
        seeded = np.zeros((self.num_objects, height, width), dtype=bool)
        if seed is not None:
            seeded = seed[None] == np.arange(1, self.num_objects + 1, dtype=seed.dtype)[:, None, None]
        starting = seeded.any(axis=(1, 2))
        absent = ~self.started(frame) | starting  # take no proposal this frame
        predicted = self.predicted_boxes(warped)
        candidates = predicted.copy()
        candidates[absent] = np.nan  # a NaN box overlaps nothing: no proposal joins an absent object
        owner = assign_proposals(proposals.boxes, candidates)
        owner = graph_owners(owner, proposals.boxes, predicted, s.join_iou)  # nodes: overlap p by join_iou
        node_features = self._node_features(image, proposals, owner)

        finals = np.zeros((self.num_objects, height, width), dtype=bool)
        soft = np.zeros((self.num_objects, height, width), dtype=np.float32)
        q_from_selected = s.temporal and s.q_source == "selected"  # otherwise Q warps the final labels
        if q_from_selected:  # the selected masks, before Eqs. 7-8
            picked = np.zeros((self.num_objects, height, width), dtype=bool)
            picked_soft = np.zeros((self.num_objects, height, width), dtype=np.float32)
        chosen = np.full(self.num_objects, LOST, dtype=np.int64)
        nodes = np.zeros(self.num_objects, dtype=np.int64)
        no_proposal = np.zeros(self.num_objects, dtype=bool)
        memory_items: list[tuple[np.ndarray, tuple[torch.Tensor, Window]] | None] = [None] * self.num_objects
        for obj in range(self.num_objects):
            if absent[obj]:
                chosen[obj] = Q_NODE if starting[obj] else NOT_STARTED
                continue
            q_binary = warped[obj] >= s.q_threshold
            rows = np.flatnonzero(owner == obj)
            states, binary, index = self._spatial(rows, proposals, node_features, warped[obj])
            nodes[obj] = len(binary)
            pick = None
            if len(rows):
                scores = selection_scores(binary, predicted[obj], q_binary, s.lambda1, s.lambda2)
                pick = select(scores, proposals.scores[rows])
                if not binary[pick].any():
                    pick = None
            if pick is None:  # no proposal (or none with any pixel): the warped mask is the only node
                no_proposal[obj] = True
                state = warped[obj].astype(np.float32)
                mask = state > s.threshold
                chosen[obj] = Q_NODE if mask.any() else LOST
            else:
                state, mask = states[pick], binary[pick]
                chosen[obj] = int(rows[pick])
            if not mask.any():
                continue
            if q_from_selected:
                picked[obj] = drop_fragments(mask, s.min_fragment)
                picked_soft[obj] = np.where(picked[obj], state, 0.0)
            if s.temporal:
                selected = mask
                state, mask, key_window = self._temporal(image, obj, mask)
                memory_items[obj] = (selected, key_window)
            mask = drop_fragments(mask, s.min_fragment)
            finals[obj], soft[obj] = mask, np.where(mask, state, 0.0)

        if starting.any():  # the seed is ground truth: its pixels belong to the objects it starts
            apply_seed(finals, soft, seeded, starting)
            if q_from_selected:
                apply_seed(picked, picked_soft, seeded, starting)
            if s.temporal:
                for obj in np.flatnonzero(starting):
                    memory_items[obj] = (seeded[obj], self._key_window(image, seeded[obj]))
        labels = resolve_labels(finals, soft)
        resolved = labels[None] == np.arange(1, self.num_objects + 1, dtype=np.uint8)[:, None, None]
        self._remember_boxes(resolved)
        for obj, item in enumerate(memory_items):
            if item is not None:  # value: the selected mask (METHOD.md), or the final one (memory_values: final)
                self._remember_mask(frame, obj, item[0] if s.memory_values == "chosen" else resolved[obj], item[1])
        boxes = np.stack([mask_box(m) for m in resolved]) if self.num_objects else np.zeros((0, 4), np.float32)
        q_labels = resolve_labels(picked, picked_soft) if q_from_selected else labels
        self._remember_q_sources(q_labels)
        return FrameResult(labels, soft, predicted, chosen, nodes, no_proposal, boxes, q_labels)

    # ------------------------------------------------------------------ components

    def _node_features(self, image: np.ndarray, proposals: Proposals, owner: np.ndarray) -> dict[int, np.ndarray]:
        """X_v of every proposal that shares its object's graph with another proposal (one batch per frame)."""
        if not self.settings.spatial or self.settings.spatial_iterations == 0:
            return {}
        objects, counts = np.unique(owner[owner >= 0], return_counts=True)
        rows = [int(r) for r in np.flatnonzero(np.isin(owner, objects[counts > 1]))]
        if not rows:
            return {}
        height, width = image.shape[:2]
        crops = [crop(image, expand_box(proposals.boxes[r], 0.0, height, width)) for r in rows]
        vectors = self.features.node_features(crops)
        return dict(zip(rows, vectors, strict=True))

    def _spatial(self, rows: np.ndarray, proposals: Proposals, features: dict[int, np.ndarray],
                 warped: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Node states after the spatial graph (Eqs. 3-5), their binary masks M^_v, and their rows."""
        s = self.settings
        if len(rows) == 0:
            return np.zeros((0, *warped.shape), np.float32), np.zeros((0, *warped.shape), bool), rows
        states = proposals.masks[rows].astype(np.float32, copy=False)
        if s.spatial and len(rows) > 1 and s.spatial_iterations > 0:
            vectors = np.stack([features[int(r)] for r in rows])
            weights = edge_weights(vectors, proposals.boxes[rows], s.alpha, s.beta)
            weights = cut_weak_edges(weights, s.edge_threshold)
            weights = silence_duplicates(weights, proposals.boxes[rows], proposals.scores[rows], s.sender_nms)
            states = spatial_update(states, weights, s.spatial_iterations, node_support(states, s.spatial_support))
        return states, states > s.threshold, rows

    def _key_window(self, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, Window]:
        height, width = mask.shape
        window = expand_box(mask_box(mask), self.settings.temporal_margin, height, width)
        patch = crop_resize(image, window, self.settings.temporal_size)
        return self.features.key_maps(patch[None])[0], window

    def _temporal(self, image: np.ndarray, obj: int, mask: np.ndarray):
        """Eqs. 7-8 on the crop of B(M^_t); returns (soft state h_t', binary mask, (key map, window))."""
        s = self.settings
        key, window = self._key_window(image, mask)
        memory = self.memories[obj]
        if len(memory) == 0:
            return mask.astype(np.float32), mask, (key, window)
        keys, values = memory.stacked()
        message = temporal_message(key, keys, values, s.temporal_temperature).cpu().numpy()
        state = temporal_update(mask.astype(np.float32), paste(message, window, mask.shape), len(memory))
        threshold = s.threshold if s.temporal_threshold is None else s.temporal_threshold
        return state, state > threshold, (key, window)

    def _value_size(self, key: torch.Tensor) -> tuple[int, int]:
        """Value maps at about the crop size H1 x W1: a whole s x s patch per key location."""
        rows, cols = key.shape[1:]
        stride = max(1, round(min(self.settings.temporal_size[0] / rows, self.settings.temporal_size[1] / cols)))
        return rows * stride, cols * stride

    def _remember_boxes(self, masks: np.ndarray) -> None:
        """Motion history: the boxes of the frame's final (resolved) masks; an empty mask adds nothing."""
        for obj, mask in enumerate(masks):
            if mask.any():
                self.history[obj].append(mask_box(mask))

    def _remember_q_sources(self, q_labels: np.ndarray) -> None:
        """The masks the next Q warps, kept only for `motion_source: flow_shift` (their centroids give its shift)."""
        if self.settings.motion and self.settings.motion_source == "flow_shift":
            self.q_sources = q_labels[None] == np.arange(1, self.num_objects + 1, dtype=q_labels.dtype)[:, None, None]

    def _remember_mask(self, frame: int, obj: int, mask: np.ndarray, key_window: tuple[torch.Tensor, Window]) -> None:
        """Temporal memory node: the key map of the frame's crop and the mask in that crop as its value map."""
        key, window = key_window
        value = crop_resize(mask.astype(np.float32), window, self._value_size(key), area=True)
        self.memories[obj].add(frame, key, torch.from_numpy(value).to(key.device))
