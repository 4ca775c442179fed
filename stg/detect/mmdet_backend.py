"""Any MMDetection 3.x detector (config + checkpoint) as a class-agnostic proposal source.

Needs the optional `[mmdet]` extra (mmdet 3.3, mmengine, mmcv 2.1 with ops; see
.ci/install_mmdet.sh). All classes are merged into one ("object"); the paper's test-time rule is
then applied to the detector's output: score >= score_thresh, class-agnostic NMS at nms_thresh
(the config's own test_cfg runs first, inside the model). The checkpoint is loaded strictly with
safe (weights-only) loading, so a checkpoint for another model fails at job start.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from stg.detect.base import FRAMES, DetectBatch, Detections
from stg.detect.ops import filter_detections
from stg.devices import resolve_device
from stg.errors import InputError
from stg.weights import load_state_dict_checked, resolve_weights, weights_identity

log = logging.getLogger(__name__)

_SETTINGS = "stages.detect.mmdet"
_WEIGHTS = f"{_SETTINGS}.weights"


def import_mmdet() -> Any:
    """mmdet.apis, or a clear error saying how to get it."""
    try:
        import mmcv  # noqa: F401
        import mmengine  # noqa: F401
        from mmdet import apis
    except ImportError as error:
        raise InputError("stages.detect.backend", f"backend 'mmdet' needs mmdet, mmengine and mmcv ({error}); install "
                         "the [mmdet] extra: bash .ci/install_mmdet.sh") from None
    return apis


class MmdetDetect:
    """Frames (RGB) -> merged-class boxes and scores from an mmdet detector, batched over frames."""

    name = "mmdet"
    reads = FRAMES
    makes_masks = False

    def __init__(self, config: str | None = None, weights: str | None = None, score_thresh: float = 0.05,
                 nms_thresh: float = 0.6, batch_size: int = 2, device: str = "auto") -> None:
        self.score_thresh, self.nms_thresh, self.batch_size = float(score_thresh), float(nms_thresh), batch_size
        if config is None or str(config) == "":
            raise InputError(f"{_SETTINGS}.config", "no mmdet model config configured; set it to a config .py file")
        self.config_path = Path(config).expanduser()
        if not self.config_path.is_file():
            raise InputError(self.config_path, f"mmdet config file is missing (setting {_SETTINGS}.config)")
        self.weights_path = resolve_weights(weights, None, _WEIGHTS)
        self.device = resolve_device(device, "stages.detect.device")
        apis = import_mmdet()
        try:
            # init_detector warns "checkpoint is None" (we load it ourselves, strictly, below) and resets
            # the warning filters to do so; record its warnings and log them instead.
            with warnings.catch_warnings(record=True) as caught:
                model = apis.init_detector(str(self.config_path), checkpoint=None, device="cpu")
            for warning in caught:
                log.debug("mmdet init_detector: %s", warning.message)
        except Exception as error:  # mmengine raises many types for a bad config
            raise InputError(self.config_path, f"cannot build an mmdet model from this config "
                             f"({type(error).__name__}: {error}) (setting {_SETTINGS}.config)") from error
        load_state_dict_checked(model, self.weights_path, _WEIGHTS)
        self._model = model.to(self.device).eval()
        self._pipeline = self._test_pipeline(model.cfg)
        self._identity = {"config": weights_identity(self.config_path), "weights": weights_identity(self.weights_path),
                          "model": type(model).__name__}

    @staticmethod
    def _test_pipeline(cfg: Any) -> Any:
        """The config's test pipeline, reading arrays instead of files (as mmdet's inference_detector does)."""
        from mmcv.transforms import Compose
        from mmdet.utils import get_test_pipeline_cfg

        steps = get_test_pipeline_cfg(cfg.copy())
        steps[0].type = "mmdet.LoadImageFromNDArray"
        return Compose(steps)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "classes": "all merged into one (object)", "score_thresh": self.score_thresh,
                "nms_thresh": self.nms_thresh, "device": str(self.device), **self._identity}

    def raw_predictions(self, images: np.ndarray) -> list[Any]:
        """The model's DetDataSamples for (B, H, W, 3) uint8 RGB images, in one batched test_step."""
        import torch

        samples = [self._pipeline({"img": np.ascontiguousarray(image[..., ::-1]), "img_id": 0})  # mmdet wants BGR
                   for image in images]
        data = {"inputs": [s["inputs"] for s in samples], "data_samples": [s["data_samples"] for s in samples]}
        with torch.no_grad():
            return self._model.test_step(data)

    def detect(self, batch: DetectBatch) -> list[Detections]:
        images = batch.images
        if images is None or images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError("the mmdet backend needs (B, H, W, 3) uint8 images")
        results: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            for sample in self.raw_predictions(images[start:start + self.batch_size]):
                boxes = sample.pred_instances.bboxes.float().cpu().numpy().astype(np.float32)
                scores = sample.pred_instances.scores.float().cpu().numpy().astype(np.float32)
                keep = filter_detections(boxes, scores, self.score_thresh, self.nms_thresh)
                results.append(Detections(boxes[keep], scores[keep]))
        return results
