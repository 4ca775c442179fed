"""DeepLabv3+ proposals (segmentation-models-pytorch): the paper's segmenter.

Input: the RGB crop (ImageNet-normalised) plus the prior Q as a 4th channel (0..1), cropped around
the box enlarged by `margin` on every side and resized to `input_size` squared, built by
stg.segment.crops exactly as the training stage builds its samples. The sigmoid output is resized
back to the crop and pasted into an empty H x W frame.

`weights`: null is the segmenter shipped with the package (trained by `stg train-segmenter` on the
DAVIS 2016 training videos; registry id `segmenter_davis16`), a path is the user's own checkpoint, and
`trained` (resolved by the workflow's run plan) is the train_segmenter stage's output for this config.
`encoder_init` (imagenet-deepsort: MobileNetV2, imagenet-lite0: EfficientNet-Lite0) only starts a network from
ImageNet weights (random decoder).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from stg.devices import resolve_device
from stg.errors import InputError
from stg.segment.crops import crop_input, paste_probabilities
from stg.segment.geometry import crop_region

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SETTING = "stages.segment.deeplab"
SHIPPED_ID = "segmenter_davis16"
SHIPPED_ENCODER = "mobilenet_v2"
TRAINED = "trained"  # weights value the run plan replaces with the train_segmenter stage's model file


def build_deeplab(encoder: str) -> torch.nn.Module:
    """A randomly initialised 4-channel, 1-class DeepLabv3+ (never downloads encoder weights)."""
    import segmentation_models_pytorch as smp

    return smp.DeepLabV3Plus(encoder_name=encoder, encoder_weights=None, in_channels=4, classes=1)


def _check_combination(encoder: str, weights: str | None, encoder_init: str | None) -> None:
    """Checks that relate settings to each other; each one's own type and range is the schema's job."""
    from stg.pretrained import ENCODER_INITS

    if encoder_init is not None and ENCODER_INITS.get(encoder_init) != encoder:
        raise InputError(f"{SETTING}.encoder_init", f"'{encoder_init}' holds {ENCODER_INITS.get(encoder_init)} "
                         f"weights only; it does not fit encoder '{encoder}'")
    if encoder_init is not None and weights:
        raise InputError(f"{SETTING}.encoder_init", "a full checkpoint is configured (weights), which replaces every "
                         "parameter; encoder_init is for training starts only: set it to null")
    if weights == TRAINED:
        raise InputError(f"{SETTING}.weights", "'trained' names the train_segmenter stage's model, which the "
                         "workflow resolves; by hand, give the path of its model.pt")
    if weights is None and encoder_init is None and encoder != SHIPPED_ENCODER:
        raise InputError(f"{SETTING}.weights", f"the shipped segmenter is a {SHIPPED_ENCODER} network, not "
                         f"'{encoder}': set weights to a {encoder} checkpoint, or encoder to {SHIPPED_ENCODER}")


class DeepLabSegmenter:
    """Batched DeepLabv3+ over the proposals of a frame; model, weights and device are checked at construction."""

    name = "deeplab"

    def __init__(self, encoder: str = "mobilenet_v2", weights: str | None = None, encoder_init: str | None = None,
                 input_size: int = 192, margin: float = 0.25, batch_size: int = 16, device: str = "auto",
                 online_learning: dict[str, Any] | None = None) -> None:
        from stg.weights import load_state_dict_checked, weights_identity
        from stg.weights_registry import resolve_known

        _check_combination(encoder, weights, encoder_init)
        self.encoder, self.input_size, self.margin, self.batch_size = encoder, input_size, float(margin), batch_size
        self.online_learning = online_learning  # the workflow's per-video fine-tuning (already in `weights` here)
        self.device = resolve_device(device, "stages.segment.device")
        self.model = build_deeplab(encoder)
        self.weights: dict[str, Any] | None = None
        self.encoder_init: dict[str, Any] | None = None
        if encoder_init is not None:
            from stg.pretrained import init_encoder

            self.encoder_init = init_encoder(self.model, encoder_init, f"{SETTING}.encoder_init")
            log.warning("DeepLabv3+ (%s) runs with an ImageNet encoder and a random decoder: its masks are "
                        "meaningless until trained", encoder)
        else:
            path = resolve_known(SHIPPED_ID, weights, f"{SETTING}.weights")
            load_state_dict_checked(self.model, path, f"{SETTING}.weights")
            self.weights = {**weights_identity(path), "shipped": weights is None}
        import torch

        # NHWC: MobileNetV2's depthwise convolutions run 1.5-1.8x faster on the CPU (README "Speed"), same output
        self.model.to(self.device, memory_format=torch.channels_last).eval()

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "encoder": self.encoder, "input_size": self.input_size, "margin": self.margin,
                "weights": self.weights, "encoder_init": self.encoder_init, "device": str(self.device),
                **({"online_learning": self.online_learning} if (self.online_learning or {}).get("steps") else {})}

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """(N, 4, S, S) network inputs -> (N, S, S) foreground probabilities, in batches."""
        import torch

        out = np.empty((len(inputs), self.input_size, self.input_size), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(inputs), self.batch_size):
                batch = torch.from_numpy(inputs[start:start + self.batch_size]).to(self.device)
                out[start:start + len(batch)] = torch.sigmoid(self.model(batch)[:, 0].float()).cpu().numpy()
        return out

    def segment(self, image: np.ndarray, boxes: np.ndarray, planes: np.ndarray, plane_of_box: np.ndarray
                ) -> np.ndarray:
        height, width = image.shape[:2]
        masks = np.zeros((len(boxes), height, width), dtype=np.uint8)
        regions = [crop_region(box, self.margin, height, width) for box in boxes]
        valid = [n for n, (left, top, right, bottom) in enumerate(regions) if right > left and bottom > top]
        if not valid:
            return masks
        inputs = np.stack([crop_input(image, planes[plane_of_box[n]], regions[n], self.input_size) for n in valid])
        for n, probability in zip(valid, self.probabilities(inputs), strict=True):
            frame = paste_probabilities(probability, regions[n], height, width)
            masks[n] = np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)
        return masks
