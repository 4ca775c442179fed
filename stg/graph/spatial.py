"""Spatial graph over one object's proposals (Eqs. 3-5): edge weights and l rounds of mask message passing.

The numpy functions are inference's; the `*_torch` ones compute the same (tests/test_train_graph.py checks them
against each other) with autograd through the node features, for training (stg/train/graph.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from stg.detect.ops import filter_detections
from stg.graph.boxes import box_iou_matrix, mask_box

if TYPE_CHECKING:
    import torch

SPATIAL_SUPPORTS = ("image", "box", "mask")


def cosine_matrix(features: np.ndarray) -> np.ndarray:
    """(N, C) -> (N, N) cosine similarities; a zero vector has similarity 0 with everything."""
    features = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.where(norms > 0, norms, 1.0)
    return unit @ unit.T


def edge_weights(features: np.ndarray, boxes: np.ndarray, alpha: float = 0.7, beta: float = 0.3) -> np.ndarray:
    """Eq. 3: W_vu = alpha cos(X_v, X_u) + beta IoU(b_v, b_u) for v != u, W_vv = 0."""
    if len(features) != len(boxes):
        raise ValueError(f"{len(features)} feature vectors for {len(boxes)} boxes")
    weights = alpha * cosine_matrix(features) + beta * box_iou_matrix(boxes, boxes)
    np.fill_diagonal(weights, 0.0)
    return weights


def cut_weak_edges(weights: np.ndarray, threshold: float) -> np.ndarray:
    """W with every edge below `threshold` removed (0: Eq. 3's fully connected graph), so a node shares its mask
    only with the proposals it resembles."""
    return np.where(weights >= threshold, weights, 0.0) if threshold > 0 else weights


def silence_duplicates(weights: np.ndarray, boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """W without the edges out of proposals that NMS at `iou` suppresses (in score order): they send no message in
    Eq. 4 but still receive them and stay candidates of Eq. 6. 0: every node sends (the paper's graph).

    The paper's nodes come from a detector with NMS at 0.6; a union of detectors and jittered motion boxes holds
    near-duplicates, and each copy would otherwise add its vote to the average of Eq. 5.
    """
    if iou <= 0 or len(boxes) < 2:
        return weights
    senders = np.zeros(len(boxes), dtype=bool)
    senders[filter_detections(np.asarray(boxes, np.float32), np.asarray(scores, np.float32), -np.inf, iou)] = True
    return np.where(senders[None, :], weights, 0.0)


def node_support(states: np.ndarray, support: str) -> np.ndarray | None:
    """(N, H, W) bool: where each node's state may change in Eqs. 4-5; None for `image` (everywhere, the paper).

    `mask`: where the node's own mask is non-zero; `box`: inside the box of those pixels (the crop its segmenter saw).
    A node's neighbours can then re-weigh its own pixels but not add theirs, so a near-duplicate proposal that spans
    background cannot carry that background into a tight node.
    """
    if support not in SPATIAL_SUPPORTS:
        raise ValueError(f"spatial support must be one of {SPATIAL_SUPPORTS}, got {support!r}")
    if support == "image":
        return None
    own = np.asarray(states) > 0
    if support == "mask":
        return own
    boxed = np.zeros_like(own)
    for plane, out in zip(own, boxed, strict=True):
        box = mask_box(plane)
        if not np.isnan(box[0]):
            left, top, right, bottom = box.astype(int)
            out[top:bottom, left:right] = True
    return boxed


def spatial_update(states: np.ndarray, weights: np.ndarray, iterations: int = 2,
                   support: np.ndarray | None = None) -> np.ndarray:
    """Eqs. 4-5 iterated with W fixed: h_v' = ((1 - W_vv) h_v + sum_u W_vu h_u) / (1 + sum_u W_vu).

    `states` is (N, H, W) (or (N, D)) float; returns the states after `iterations` rounds (0: unchanged).
    The sums run over the neighbours u != v, which is all of them since the graph is fully connected
    and W_vv = 0 (so the self term keeps weight 1). `support` (`node_support`, same shape as `states`) zeroes each
    node's state outside it after every round; None: the paper's update everywhere.
    """
    if iterations < 0:
        raise ValueError(f"spatial graph iterations must be >= 0, got {iterations}")
    weights = np.asarray(weights, dtype=np.float64)
    neighbours = weights - np.diag(np.diag(weights))
    self_weight = 1.0 - np.diag(weights)
    normaliser = 1.0 + neighbours.sum(axis=1)
    h = np.asarray(states, dtype=np.float32)
    flat = h.reshape(len(h), -1)
    mix = ((np.diag(self_weight) + neighbours) / normaliser[:, None]).astype(np.float32)
    inside = None if support is None else np.asarray(support, dtype=bool).reshape(len(h), -1)
    for _ in range(iterations):
        flat = mix @ flat
        if inside is not None:
            flat = np.where(inside, flat, np.float32(0.0))
    return flat.reshape(h.shape)


def edge_weights_torch(features: torch.Tensor, box_iou: torch.Tensor, alpha: float = 0.7, beta: float = 0.3
                       ) -> torch.Tensor:
    """Eq. 3 in torch, differentiable w.r.t. the (N, C) node features; `box_iou` (N, N) is a constant (the boxes
    are data). A zero feature vector has cosine 0 with everything, as in `cosine_matrix`."""
    import torch.nn.functional as F

    unit = F.normalize(features.float(), dim=1, eps=1e-12)
    weights = alpha * (unit @ unit.T) + beta * box_iou.to(unit)
    return weights * (1.0 - torch_eye(len(weights), weights))


def torch_eye(size: int, like: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.eye(size, dtype=like.dtype, device=like.device)


def spatial_update_torch(states: torch.Tensor, weights: torch.Tensor, iterations: int = 2) -> torch.Tensor:
    """Eqs. 4-5 as `spatial_update` with `support` None (training emulates the paper's graph: every node sends and
    may change everywhere), in torch: gradients flow into `weights` (and `states`)."""
    if iterations < 0:
        raise ValueError(f"spatial graph iterations must be >= 0, got {iterations}")
    weights = weights.float()
    eye = torch_eye(len(weights), weights)
    diagonal = weights.diagonal()
    neighbours = weights * (1.0 - eye)
    normaliser = 1.0 + neighbours.sum(dim=1)
    mix = (eye * (1.0 - diagonal)[:, None] + neighbours) / normaliser[:, None]
    flat = states.float().reshape(len(states), -1)
    for _ in range(iterations):
        flat = mix @ flat
    return flat.reshape(states.shape)
