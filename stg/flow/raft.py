"""RAFT optical flow (torchvision's implementation) behind the FlowBackend interface.

Weights come from a configured checkpoint or torchvision's cache; nothing is downloaded.
Settings are checked against the config schema when the backend is built (stg.flow.backends);
the device and checkpoint fail in the constructor, so a bad configuration stops the job before it
writes any output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stg.devices import resolve_device
from stg.weights import load_state_dict_checked, resolve_weights, weights_identity

# RAFT works at 1/8 resolution and its 4-level correlation pyramid needs feature maps of at
# least 16 x 16, hence inputs padded to a multiple of 8 and to at least 128 px per side.
_STRIDE = 8
_MIN_SIDE = 128
# Config keys named in error messages (see workflow/schemas/config.schema.yaml).
_SETTINGS = "stages.flow.raft"
_WEIGHTS = f"{_SETTINGS}.weights"


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The input size RAFT accepts for a frame of this size (padding goes right and bottom)."""

    def side(n: int) -> int:
        return max(-(-n // _STRIDE) * _STRIDE, _MIN_SIDE)

    return side(height), side(width)


class RaftFlow:
    """Dense flow from torchvision's raft_large / raft_small."""

    name = "raft"

    def __init__(
        self,
        model: str = "raft_large",
        weights: str | None = None,
        num_flow_updates: int = 12,
        device: str = "auto",
        batch_size: int = 4,
    ) -> None:
        import torch
        from torchvision.models import optical_flow

        self.model_name, self.num_flow_updates, self.batch_size = model, num_flow_updates, batch_size
        self.device = resolve_device(device, "stages.flow.device")

        builder, default = {
            "raft_large": (optical_flow.raft_large, optical_flow.Raft_Large_Weights.DEFAULT),
            "raft_small": (optical_flow.raft_small, optical_flow.Raft_Small_Weights.DEFAULT),
        }[model]
        self.weights_path: Path = resolve_weights(weights, default.url.rsplit("/", 1)[-1], _WEIGHTS)
        net = builder(weights=None, progress=False)
        load_state_dict_checked(net, self.weights_path, _WEIGHTS)
        self._net = net.eval().to(self.device)
        self._weights_identity = weights_identity(self.weights_path)
        self._torch = torch

    def identity(self) -> dict[str, Any]:
        """What changes the flow values; the store records it so a cache is never reused across settings."""
        return {
            "backend": self.name,
            "model": self.model_name,
            "num_flow_updates": self.num_flow_updates,
            "weights": self._weights_identity,
            "device": str(self.device),
        }

    def preprocess(self, frames: np.ndarray) -> Any:
        """(B,H,W,3) uint8 -> (B,3,H',W') float in [-1, 1], replicate-padded right/bottom to a size RAFT accepts.

        The [-1, 1] scaling matches torchvision's OpticalFlow transform, which the weights were trained with.
        """
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        height, width = frames.shape[1:3]
        pad_h, pad_w = padded_size(height, width)
        if (pad_h, pad_w) != (height, width):
            x = torch.nn.functional.pad(x, (0, pad_w - width, 0, pad_h - height), mode="replicate")
        return x.contiguous()

    def flow(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 RGB pairs -> (B, H, W, 2) float32 flow from source to target."""
        for label, array in (("sources", sources), ("targets", targets)):
            if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
                raise ValueError(f"{label} must be (B, H, W, 3) uint8, got {array.shape} {array.dtype}")
        if sources.shape != targets.shape:
            raise ValueError(f"sources {sources.shape} and targets {targets.shape} differ in shape")
        count, height, width = sources.shape[:3]
        out = np.empty((count, height, width, 2), dtype=np.float32)
        with self._torch.inference_mode():
            for start in range(0, count, self.batch_size):
                stop = min(start + self.batch_size, count)
                predictions = self._net(
                    self.preprocess(sources[start:stop]),
                    self.preprocess(targets[start:stop]),
                    num_flow_updates=self.num_flow_updates,
                )
                # Channel 0 of RAFT's flow is dx (columns), channel 1 dy (rows), as our convention wants.
                last = predictions[-1][:, :, :height, :width]
                out[start:stop] = last.permute(0, 2, 3, 1).float().cpu().numpy()
        return out
