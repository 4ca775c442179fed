"""The graph's training loss (Eq. 9), a pure torch function of one object's node states and final mask.

L = gamma * sum_v |S(M^_v | b, M) - S(M^_v | p, Q)| + BCE(M^, M)

with S(M | box, mask) = lambda1 IoU(B(M), box) + lambda2 IoU(M, mask) (Eq. 6), (b, M) the ground truth's box
and mask, (p, Q) the predicted box and the warped mask that inference selects with. To be differentiable:

- IoU(M^_v, mask) is the soft IoU of the node state h_v after the spatial update (sum h m / sum (h + m - h m)),
  which equals the binary IoU when h_v is binary;
- IoU(B(M^_v), box) is a constant: the box of the thresholded mask (h_v > thr) is piecewise constant in h_v, so
  its gradient is zero almost everywhere, and a soft box surrogate would change the value that selection uses.
  Inside |.| the term still sets the sign of each node's gradient;
- the BCE is taken on the final soft mask in [0, 1] (after the spatial and temporal updates), clamped away from
  0 and 1; the paper writes BCE(sigmoid(M^), M) for logits, but the graph's states are already probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from stg.graph.boxes import box_iou_matrix, mask_box

GAMMA = 100.0       # the paper's weight of the selection term
BCE_EPS = 1e-6


def soft_iou(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, H, W) soft states and one (H, W) mask in [0, 1] -> (N,) soft IoUs (0 where both are empty)."""
    mask = mask.to(states.dtype)
    intersection = (states * mask).flatten(1).sum(1)
    union = (states + mask - states * mask).flatten(1).sum(1)
    return torch.where(union > 0, intersection / union.clamp_min(1e-12), torch.zeros_like(union))


def mask_box_ious(states: torch.Tensor, box: np.ndarray, threshold: float) -> np.ndarray:
    """IoU(B(h_v > thr), box) of every node, as numbers (no gradient); an empty mask or box gives 0."""
    binary = (states.detach() > threshold).cpu().numpy()
    boxes = np.stack([mask_box(plane) for plane in binary]) if len(binary) else np.zeros((0, 4), np.float32)
    return box_iou_matrix(boxes, np.asarray(box, dtype=np.float64).reshape(1, 4))[:, 0]


def soft_selection_scores(states: torch.Tensor, box: np.ndarray, mask: torch.Tensor, lambda1: float,
                          lambda2: float, threshold: float) -> torch.Tensor:
    """Eq. 6 on soft states: lambda1 IoU(B(h_v > thr), box) (constant) + lambda2 softIoU(h_v, mask)."""
    boxes = torch.as_tensor(mask_box_ious(states, box, threshold), dtype=states.dtype, device=states.device)
    return lambda1 * boxes + lambda2 * soft_iou(states, mask)


@dataclass(frozen=True)
class Eq9Terms:
    total: torch.Tensor
    selection: torch.Tensor  # sum_v |S(M^_v | b, M) - S(M^_v | p, Q)| (before gamma)
    bce: torch.Tensor


def eq9_loss(states: torch.Tensor, truth_box: np.ndarray, truth: torch.Tensor, predicted_box: np.ndarray,
             warped: torch.Tensor, final: torch.Tensor, final_truth: torch.Tensor, gamma: float = GAMMA,
             lambda1: float = 0.4, lambda2: float = 0.6, threshold: float = 0.5) -> Eq9Terms:
    """Eq. 9 for one object in one frame.

    states: (N, H, W) node states h_v after the spatial update; truth_box, truth: b and M; predicted_box,
    warped: p and Q (binary, as inference's Eq. 6 uses it); final, final_truth: the final soft mask and the ground
    truth on the same pixels (e.g. the temporal graph's window).
    """
    by_truth = soft_selection_scores(states, truth_box, truth, lambda1, lambda2, threshold)
    by_prediction = soft_selection_scores(states, predicted_box, warped, lambda1, lambda2, threshold)
    selection = (by_truth - by_prediction).abs().sum()
    bce = F.binary_cross_entropy(final.float().clamp(BCE_EPS, 1 - BCE_EPS), final_truth.float())
    return Eq9Terms(gamma * selection + bce, selection, bce)
