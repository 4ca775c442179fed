"""Temporal graph (Eqs. 7-8): refine an object's current mask with its masks of earlier frames.

Each memory node r holds a key map K_r (C, h, w) of its crop (H1 x W1) and the value map of its mask in
that crop. For every location i of the current key map, each memory frame contributes a softmax-
weighted average of its values over its locations j; the messages of all memory frames are summed
(Eq. 7), and h_t' = eta (h_t + m_t) (Eq. 8). Key maps are computed once per frame and kept.

The paper's key and value maps share the crop's H1 x W1 grid. A CNN's key map is coarser (stride s), so
each key location j carries the s x s patch of the value map it covers: the attention is computed at the
key grid and moves whole patches, which keeps the value maps, and the message, at crop resolution
(s = 1 is the literal equation; a scalar value per location would blur every boundary to the key grid).

Everything here is torch and differentiable: training (stg/train/graph.py) runs the same `temporal_message` and
`temporal_update` as inference, with gradients into the key maps, and `paste_window` is crops.paste in torch.
"""

from __future__ import annotations

import numpy as np
import torch

MEMORY_POLICIES = ("all", "first_and_window")


def to_patches(values: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(R, h*s, w*s) value maps -> (R, h*w, s*s): the s x s patch under each of the h x w key locations."""
    count, height, width = values.shape
    rows, cols = grid
    if height % rows or width % cols or height // rows != width // cols:
        raise ValueError(f"value maps {height}x{width} are not a whole square patch per key location of {rows}x{cols}")
    s = height // rows
    return values.reshape(count, rows, s, cols, s).permute(0, 1, 3, 2, 4).reshape(count, rows * cols, s * s)


def from_patches(patches: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(h*w, s*s) -> (h*s, w*s), the inverse of `to_patches` for one map."""
    rows, cols = grid
    s = int(round(patches.shape[1] ** 0.5))
    return patches.reshape(rows, cols, s, s).permute(0, 2, 1, 3).reshape(rows * s, cols * s)


def temporal_message(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                     temperature: float | None = None) -> torch.Tensor:
    """Eq. 7: m_i = sum_r sum_j softmax_j(<K_t,i, K_r,j>) (h_r)_j.

    query (C, h, w); keys (R, C, h', w'); values (R, h'*s, w'*s) -> message (h*s, w*s), each (h_r)_j being
    the s x s value patch of key location j (s = 1: one value per location, the literal equation).
    `temperature` None is the paper's plain dot product; a number divides the dot products by it.
    """
    channels, rows, cols = query.shape
    if keys.shape[0] == 0:
        return torch.zeros((rows, cols), dtype=query.dtype, device=query.device)
    q = query.reshape(channels, -1)                                      # (C, I)
    k = keys.reshape(keys.shape[0], channels, -1)                        # (R, C, J)
    logits = torch.einsum("ci,rcj->rij", q, k)                           # (R, I, J)
    if temperature is not None:
        logits = logits / temperature
    attention = torch.softmax(logits, dim=2)
    v = to_patches(values.to(attention.dtype), tuple(keys.shape[2:]))   # (R, J, s*s)
    return from_patches(torch.bmm(attention, v).sum(dim=0), (rows, cols))


def value_size(crop_size: tuple[int, int], key_grid: tuple[int, int]) -> tuple[int, int]:
    """Value maps at about the crop size H1 x W1 with a whole s x s patch per key location (GraphTracker's)."""
    rows, cols = key_grid
    stride = max(1, round(min(crop_size[0] / rows, crop_size[1] / cols)))
    return rows * stride, cols * stride


def paste_window(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (h, w) map resized bilinearly to a window of `size` (height, width): stg.graph.crops.paste's resize in torch
    (cv2's INTER_LINEAR = half-pixel centres, no antialiasing), differentiable."""
    import torch.nn.functional as F

    if tuple(values.shape) == tuple(size):
        return values
    return F.interpolate(values[None, None], size=tuple(size), mode="bilinear", align_corners=False)[0, 0]


def temporal_update(state: np.ndarray | torch.Tensor, message: np.ndarray | torch.Tensor, num_memory: int):
    """Eq. 8: h' = eta (h + m) with eta = 1 / (R + 1), R memory frames (the paper's 1/(t+1) when R = t)."""
    return (state + message) / (num_memory + 1)


class TemporalMemory:
    """One object's memory nodes under a size policy; keys and values live in growing (R, ...) buffers.

    `all` keeps every frame (the paper); `first_and_window` keeps the first frame added (frame 0, the
    ground truth) and the last `window` frames, so long videos stay bounded in memory and time.
    Key maps are stored once when a frame is added and never recomputed.
    """

    def __init__(self, policy: str = "all", window: int = 10) -> None:
        if policy not in MEMORY_POLICIES:
            raise ValueError(f"unknown memory policy '{policy}' (expected one of {', '.join(MEMORY_POLICIES)})")
        if window < 1:
            raise ValueError(f"memory window must be >= 1, got {window}")
        self.policy, self.window = policy, window
        self._frames: list[int] = []
        self._keys: torch.Tensor | None = None
        self._values: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self._frames)

    def frames(self) -> list[int]:
        return list(self._frames)

    def add(self, frame: int, key: torch.Tensor, value: torch.Tensor) -> None:
        """Append a node; keys (C, h, w) and values (h, w) must keep one size (a fixed crop size)."""
        count = len(self._frames)
        if self.policy == "first_and_window" and count == self.window + 1:
            # drop the oldest non-first node: shift the window left by one
            self._keys[1:count - 1] = self._keys[2:count].clone()
            self._values[1:count - 1] = self._values[2:count].clone()
            del self._frames[1]
            count -= 1
        if self._keys is None or count == self._keys.shape[0]:
            capacity = max(4, 2 * count) if self.policy == "all" else self.window + 1
            keys = key.new_empty((capacity, *key.shape))
            values = value.new_empty((capacity, *value.shape))
            if self._keys is not None:
                keys[:count], values[:count] = self._keys[:count], self._values[:count]
            self._keys, self._values = keys, values
        self._keys[count], self._values[count] = key, value
        self._frames.append(frame)

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, C, h, w) keys and (R, h, w) values of the nodes held now (views, no copy)."""
        if self._keys is None:
            raise ValueError("the memory is empty")
        count = len(self._frames)
        return self._keys[:count], self._values[:count]
