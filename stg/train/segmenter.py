"""The segmenter as a training task: DeepLabv3+ on RGB + Q crops, BCE + Dice.

A sample is one object in one frame t >= 1: Q is the object's mask of frame t-1 warped to t by the
cached flow, randomly deformed; the crop is the object's box (jittered as detections are) or Q's box,
grown by `margin` per side; colours jittered and the crop flipped at random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stg.segment.crops import crop_input, crop_target
from stg.segment.geometry import crop_region
from stg.train.augment import colour_jitter, deform_prior, jitter_box, mask_box
from stg.train.data import TrainingVideo

if TYPE_CHECKING:
    import torch

ENCODER_INIT_SETTING = "training.segmenter.encoder_init"
VALIDATION_CROPS = 240  # fixed held-out crops scored after every evaluation interval


@dataclass(frozen=True)
class SegmenterSamples:
    """How training crops are made (config `training.segmenter`)."""

    input_size: int = 192
    margin: float = 0.25
    box_shift: float = 0.1
    box_scale: float = 0.15
    prior_box_probability: float = 0.5     # crop around Q's box (as a tracker does) instead of the jittered object box
    empty_prior_probability: float = 0.05
    clean_prior_probability: float = 0.3   # samples whose Q is the warped ground truth as it is
    deform_probability: float = 0.3        # each deformation's chance on the others
    colour_jitter: float = 0.2
    flip: bool = True


def make_sample(video: TrainingVideo, frame: int, obj: int, spec: SegmenterSamples, rng: np.random.Generator | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(4, S, S) input and (S, S) target; rng None gives the undeformed validation crop around Q's box."""
    height, width = video.labels.shape[1:]
    target = (video.labels[frame] == obj).astype(np.float32)
    prior = video.warped[frame, obj - 1].astype(np.float32) / 255.0
    image = video.frames[frame]
    if rng is not None:
        prior = deform_prior(prior, rng, spec.empty_prior_probability, spec.clean_prior_probability,
                             spec.deform_probability)
    prior_box, object_box = mask_box(prior), mask_box(target)
    use_prior_box = prior_box is not None and (rng is None or rng.random() < spec.prior_box_probability)
    box = prior_box if use_prior_box else object_box
    if rng is not None:
        box = jitter_box(box, rng, spec.box_shift, spec.box_scale)
    region = crop_region(box, spec.margin, height, width)
    if region[2] - region[0] < 2 or region[3] - region[1] < 2:
        region = crop_region(object_box, spec.margin, height, width)
    if rng is not None and spec.colour_jitter:
        left, top, right, bottom = region
        image = image.copy()
        image[top:bottom, left:right] = colour_jitter(image[top:bottom, left:right], rng, spec.colour_jitter)
    inputs, labels = crop_input(image, prior, region, spec.input_size), crop_target(target, region, spec.input_size)
    if rng is not None and spec.flip and rng.random() < 0.5:
        inputs, labels = inputs[:, :, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(inputs), np.ascontiguousarray(labels)


def dice_bce_loss(logits: torch.Tensor, targets: torch.Tensor, dice_weight: float = 1.0) -> torch.Tensor:
    """The paper's binary cross-entropy, plus a soft Dice term that keeps small objects from vanishing."""
    import torch.nn.functional as F

    bce = F.binary_cross_entropy_with_logits(logits, targets)
    if not dice_weight:
        return bce
    probabilities = logits.sigmoid().flatten(1)
    flat = targets.flatten(1)
    dice = 1 - (2 * (probabilities * flat).sum(1) + 1) / (probabilities.sum(1) + flat.sum(1) + 1)
    return bce + dice_weight * dice.mean()


class SegmenterTask:
    """Samples, network and loss of the 4-channel DeepLabv3+ segmenter (stg.segment.deeplab's network)."""

    name = "segmenter"

    def __init__(self, videos: list[TrainingVideo], spec: SegmenterSamples, encoder: str = "mobilenet_v2",
                 encoder_init: str | None = "imagenet-deepsort", dice_weight: float = 1.0,
                 validation: list[TrainingVideo] | None = None) -> None:
        self.videos, self.spec, self.encoder, self.encoder_init = videos, spec, encoder, encoder_init
        self.dice_weight = dice_weight
        self.index = [(v, t, k) for v, video in enumerate(videos) for t, k in video.samples()]
        if not self.index:
            raise ValueError("no training sample: every object is smaller than "
                             "stg.train.data.MIN_OBJECT_PIXELS or every video has one frame")
        self.validation = validation or []
        self._validation_crops: tuple[np.ndarray, np.ndarray] | None = None
        self.encoder_identity: dict | None = None

    def build_network(self) -> torch.nn.Module:
        from stg.segment.deeplab import build_deeplab

        model = build_deeplab(self.encoder)
        if self.encoder_init is not None:
            from stg.pretrained import init_encoder

            self.encoder_identity = init_encoder(model, self.encoder_init, ENCODER_INIT_SETTING)
        return model

    def batch(self, step: int, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        picks = rng.integers(0, len(self.index), size=batch_size)
        pairs = [make_sample(self.videos[v], t, k, self.spec, rng) for v, t, k in (self.index[p] for p in picks)]
        inputs = torch.from_numpy(np.stack([p[0] for p in pairs]))
        targets = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
        return inputs, targets

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return dice_bce_loss(outputs, targets, self.dice_weight)

    def _validation_set(self) -> tuple[np.ndarray, np.ndarray]:
        if self._validation_crops is None:
            pairs = [(video, t, k) for video in self.validation for t, k in video.samples()]
            chosen = np.linspace(0, len(pairs) - 1, num=min(VALIDATION_CROPS, len(pairs))).astype(int)
            crops = [make_sample(*pairs[n], self.spec, None) for n in chosen] if pairs else []
            self._validation_crops = (np.stack([c[0] for c in crops]) if crops else np.zeros((0,)),
                                      np.stack([c[1] for c in crops]) if crops else np.zeros((0,)))
        return self._validation_crops

    def evaluate(self, model: torch.nn.Module, device: torch.device) -> dict[str, float]:
        """Mean J of held-out crops around the undeformed warped Q: a cheap, fixed stand-in for the fold's J."""
        import torch

        inputs, targets = self._validation_set()
        if len(inputs) == 0:
            return {}
        scores = []
        for start in range(0, len(inputs), 16):
            logits = model(torch.from_numpy(inputs[start:start + 16]).to(device)).float()
            predicted = (logits[:, 0] > 0).cpu().numpy()
            truth = targets[start:start + 16] > 0.5
            union = (predicted | truth).sum(axis=(1, 2))
            inter = (predicted & truth).sum(axis=(1, 2))
            scores += np.where(union > 0, inter / np.maximum(union, 1), 1.0).tolist()
        return {"val_crop_j": float(np.mean(scores))}
