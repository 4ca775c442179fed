"""Online learning (the paper's Table 4 "OL"): the segmenter fine-tuned on one video's first annotated frame.

One annotated frame gives one sample; as in Lucid Data Dreaming (Khoreva et al. 2019), it is multiplied into
a short "dreamed" clip: the foreground is cut out, the background behind it filled in (OpenCV inpainting), and
every dreamed frame moves foreground and background by their own random affine transforms. The object's
previous mask Q of a dreamed frame is the mask under a slightly different foreground transform, as if the
object had moved since the last frame. The clip is a TrainingVideo, so the segmenter's own sampler (box
jitter, Q deformations, colour jitter, flips) and loss train on it unchanged; only the start differs: the
network begins from the segmenter the video would otherwise use.

All objects of the frame move together as one foreground layer (their overlaps stay as annotated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from stg.train.data import TrainingVideo
from stg.train.segmenter import SegmenterSamples, SegmenterTask
from stg.warp.ops import one_hot, quantise

if TYPE_CHECKING:
    import torch

INPAINT_SIDE = 240  # the background is inpainted at this shorter side (inpainting time grows with the hole's area)


@dataclass(frozen=True)
class DreamSpec:
    """Random motion of the dreamed frames (config `stages.segment.online_learning`)."""

    frames: int = 24
    rotation: float = 10.0         # degrees, foreground
    scale: float = 0.15            # log-scale range, foreground
    shift: float = 0.12            # fraction of the object's size, foreground
    background_shift: float = 0.04  # fraction of the frame size
    motion: float = 0.3            # Q's transform differs from the frame's by this fraction of each range


def _affine(centre: tuple[float, float], rotation: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D(centre, rotation, scale)
    matrix[:, 2] += shift
    return matrix


def _random_motion(rng: np.random.Generator, spec: DreamSpec, fraction: float = 1.0
                   ) -> tuple[float, float, np.ndarray]:
    rotation = rng.uniform(-spec.rotation, spec.rotation) * fraction
    scale = float(np.exp(rng.uniform(-spec.scale, spec.scale) * fraction))
    return rotation, scale, rng.uniform(-spec.shift, spec.shift, size=2) * fraction


def inpaint_background(image: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """The frame with the (dilated) foreground filled in from its surroundings, at reduced resolution inside."""
    height, width = foreground.shape
    factor = min(1.0, INPAINT_SIDE / min(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    hole = cv2.resize(foreground.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    filled = cv2.resize(cv2.inpaint(small, hole, 5, cv2.INPAINT_TELEA), (width, height), interpolation=cv2.INTER_LINEAR)
    grown = cv2.dilate(foreground.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))) > 0
    return np.where(grown[..., None], filled, image)


def dream_video(name: str, image: np.ndarray, labels: np.ndarray, num_objects: int, spec: DreamSpec,
                rng: np.random.Generator) -> TrainingVideo:
    """A (1 + spec.frames)-frame TrainingVideo made from one annotated frame (frame 0: the frame itself).

    `labels`: (H, W) object ids 1..num_objects, 0 background, other values (void) ignored as background.
    """
    height, width = labels.shape
    objects = (labels >= 1) & (labels <= num_objects)
    background = inpaint_background(image, objects)
    ys, xs = np.nonzero(objects)
    centre = (float(xs.mean()), float(ys.mean())) if len(xs) else (width / 2, height / 2)
    size = np.array([np.ptp(xs) + 1, np.ptp(ys) + 1], np.float64) if len(xs) else np.array([width, height], float)
    ids = np.where(objects, labels, 0).astype(np.uint8)

    frames, label_maps, warped = [image], [ids], [quantise(one_hot(ids, num_objects))]
    for _ in range(spec.frames):
        rotation, scale, shift = _random_motion(rng, spec)
        moved = _affine(centre, rotation, scale, tuple(shift * size))
        d_rotation, d_scale, d_shift = _random_motion(rng, spec, spec.motion)
        before = _affine(centre, rotation + d_rotation, scale * d_scale, tuple((shift + d_shift) * size))
        pan = rng.uniform(-spec.background_shift, spec.background_shift, size=2) * (width, height)
        scenery = _affine((width / 2, height / 2), 0.0, float(np.exp(rng.uniform(-0.05, 0.05))), tuple(pan))
        frame = cv2.warpAffine(background, scenery, (width, height), borderMode=cv2.BORDER_REFLECT)
        object_image = cv2.warpAffine(image, moved, (width, height), borderMode=cv2.BORDER_REFLECT)
        object_ids = cv2.warpAffine(ids, moved, (width, height), flags=cv2.INTER_NEAREST, borderValue=0)
        frame = np.where(object_ids[..., None] > 0, object_image, frame)
        previous = cv2.warpAffine(ids, before, (width, height), flags=cv2.INTER_NEAREST, borderValue=0)
        frames.append(frame)
        label_maps.append(object_ids)
        warped.append(quantise(one_hot(previous, num_objects)))
    return TrainingVideo(f"{name} (dreamed)", np.stack(frames), np.stack(label_maps), np.stack(warped), num_objects)


class OnlineTask(SegmenterTask):
    """The segmenter's task on a dreamed clip, starting from a given network's weights instead of ImageNet."""

    name = "online-segmenter"

    def __init__(self, video: TrainingVideo | list[TrainingVideo], spec: SegmenterSamples, start: dict[str, Any],
                 encoder: str, dice_weight: float = 1.0, train_encoder: bool = True) -> None:
        videos = video if isinstance(video, list) else [video]  # one dreamed clip per seed frame
        super().__init__(videos, spec, encoder=encoder, encoder_init=None, dice_weight=dice_weight)
        self.start, self.train_encoder = start, train_encoder

    def build_network(self) -> torch.nn.Module:
        model = super().build_network()
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in self.start.items()})
        if not self.train_encoder:
            freeze(model.encoder)
        return model


def freeze(module: torch.nn.Module) -> None:
    """Fixed weights and BatchNorm statistics, whatever mode the training loop sets: no gradient flows into the
    module, so its backward pass (most of a MobileNetV2 step's time) is skipped."""
    module.requires_grad_(False)
    module.eval()
    module.train = lambda mode=True: module  # the loop's model.train() reaches children through this
