"""Class-agnostic Mask R-CNN (torchvision's maskrcnn_resnet50_fpn_v2, 2 classes: background, object).

The paper's detector is a Mask R-CNN with one foreground class. No torchvision file exists for
such a model, so the checkpoint must be configured; nothing downloads. Test-time thresholds
default to the paper's: score 0.05, NMS IoU 0.6 (with one class torchvision's per-class NMS is
class-agnostic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stg.detect.base import FRAMES, DetectBatch, Detections
from stg.devices import resolve_device
from stg.errors import InputError
from stg.warp.ops import quantise
from stg.weights import load_state_dict_checked, resolve_weights, weights_identity

_SETTINGS = "stages.detect.torchvision"
_WEIGHTS = f"{_SETTINGS}.weights"


def build_model(box_score_thresh: float = 0.05, box_nms_thresh: float = 0.6, max_detections: int = 100,
                min_size: int = 800, max_size: int = 1333, rpn_post_nms_top_n: int = 1000) -> Any:
    """The randomly initialised 2-class model; a checkpoint is loaded on top (tests and benchmarks save one)."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    return maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=2,
                                    box_score_thresh=box_score_thresh, box_nms_thresh=box_nms_thresh,
                                    box_detections_per_img=max_detections, min_size=min_size, max_size=max_size,
                                    rpn_post_nms_top_n_test=rpn_post_nms_top_n)


class TorchvisionDetect:
    """Frames -> boxes, scores and (optionally) soft instance masks, batched over frames.

    Each setting's type and range is checked by the config schema; only max_size >= min_size, which
    relates two settings, is checked here.
    """

    name = "torchvision"
    reads = FRAMES

    def __init__(self, weights: str | None = None, box_score_thresh: float = 0.05, box_nms_thresh: float = 0.6,
                 max_detections: int = 100, store_masks: bool = False, min_size: int = 800, max_size: int = 1333,
                 rpn_post_nms_top_n: int = 1000, batch_size: int = 2, device: str = "auto") -> None:
        import torch

        if max_size < min_size:
            raise InputError(f"{_SETTINGS}.max_size", f"must be >= min_size ({min_size}), got {max_size}")
        self.box_score_thresh, self.box_nms_thresh = float(box_score_thresh), float(box_nms_thresh)
        self.max_detections, self.min_size, self.max_size = max_detections, min_size, max_size
        self.rpn_post_nms_top_n, self.batch_size, self.makes_masks = rpn_post_nms_top_n, batch_size, store_masks
        self.device = resolve_device(device, "stages.detect.device")
        self.weights_path: Path = resolve_weights(weights, None, _WEIGHTS)
        net = build_model(self.box_score_thresh, self.box_nms_thresh, self.max_detections, self.min_size,
                          self.max_size, self.rpn_post_nms_top_n)
        load_state_dict_checked(net, self.weights_path, _WEIGHTS)
        self._net = net.eval().to(self.device)
        self._weights_identity = weights_identity(self.weights_path)
        self._torch = torch

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": "maskrcnn_resnet50_fpn_v2", "classes": ["background", "object"],
                "box_score_thresh": self.box_score_thresh, "box_nms_thresh": self.box_nms_thresh,
                "max_detections": self.max_detections, "min_size": self.min_size, "max_size": self.max_size,
                "rpn_post_nms_top_n": self.rpn_post_nms_top_n,
                "store_masks": self.makes_masks, "weights": self._weights_identity, "device": str(self.device)}

    def detect(self, batch: DetectBatch) -> list[Detections]:
        images = batch.images
        if images is None or images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError("the torchvision backend needs (B, H, W, 3) uint8 images")
        torch = self._torch
        results: list[Detections] = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + self.batch_size]))
                inputs = list(chunk.to(self.device).permute(0, 3, 1, 2).float().div_(255.0))
                for output in self._net(inputs):
                    boxes = output["boxes"].float().cpu().numpy()
                    scores = output["scores"].float().cpu().numpy()
                    masks = None
                    if self.makes_masks:  # (N, 1, H, W) probabilities pasted into the full frame
                        masks = quantise(output["masks"][:, 0].float().cpu().numpy())
                    order = np.argsort(-scores, kind="stable")
                    results.append(Detections(boxes[order].astype(np.float32), scores[order].astype(np.float32),
                                              None if masks is None else masks[order]))
        return results
