"""Class-agnostic YOLOX proposals from an ONNX export run with ONNX Runtime (default: the shipped YOLOX-Nano, COCO).

COCO-trained, so it sees people, animals and vehicles but not every object DAVIS annotates; the
`union` backend adds the flow-predicted `motion` boxes for those. As in the STG-Net paper the
detector is used class-agnostically: score = objectness x best class score, kept at >= 0.05, then
NMS at IoU 0.6 over all classes together.

Pre- and post-processing follow YOLOX itself (ValTransform with legacy=False, `decode_outputs`):
the BGR frame is resized keeping its aspect ratio to fit the square input and padded bottom/right
with 114, no normalisation; each output row holds raw (x, y, log w, log h) at its grid cell and
stride, decoded as xy = (xy + grid) * stride, wh = exp(wh) * stride, then sigmoid objectness and
class scores (the export applies the sigmoids itself, which the constructor checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from stg.detect.base import FRAMES, DetectBatch, Detections
from stg.detect.ops import filter_detections
from stg.devices import _parse as parse_device
from stg.errors import InputError
from stg.weights import weights_identity
from stg.weights_registry import resolve_known

_SETTINGS = "stages.detect.yolox"
_WEIGHTS = f"{_SETTINGS}.weights"
WEIGHTS_ID = "yolox_nano_coco"
STRIDES = (8, 16, 32)
PAD_VALUE = 114


def letterbox(image_bgr: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """YOLOX's ValTransform: (H, W, 3) uint8 -> (size, size, 3) uint8 resized by `ratio`, padded with 114."""
    height, width = image_bgr.shape[:2]
    ratio = min(size / height, size / width)
    resized = cv2.resize(image_bgr, (int(width * ratio), int(height * ratio)), interpolation=cv2.INTER_LINEAR)
    padded = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    padded[:resized.shape[0], :resized.shape[1]] = resized
    return padded, ratio


def grid_and_strides(size: int, strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) cell (x, y) and (N, 1) stride of every output row, in YOLOX's order (stride, then row, column)."""
    grids, expanded = [], []
    for stride in strides:
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        expanded.append(np.full((cells * cells, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


def decode_outputs(raw: np.ndarray, size: int, strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """(N, 5 + C) raw rows of one image -> (N, 4) xyxy boxes in input pixels and (N,) class-agnostic scores."""
    grid, stride = grid_and_strides(size, strides)
    if len(raw) != len(grid):
        raise ValueError(f"{len(raw)} output rows, expected {len(grid)} for a {size}x{size} input at strides {strides}")
    raw = raw.astype(np.float32)
    centre = (raw[:, :2] + grid) * stride
    wh = np.exp(raw[:, 2:4]) * stride
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    scores = raw[:, 4] * raw[:, 5:].max(axis=1)
    return boxes, scores


def to_frame(boxes: np.ndarray, ratio: float, size: tuple[int, int]) -> np.ndarray:
    """Input-pixel boxes -> (H, W) frame pixels: undo the letterbox's scale and clip to the frame."""
    height, width = size
    boxes = boxes / ratio
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
    return boxes


def _providers(device: str) -> list[Any]:
    """CUDA first when ONNX Runtime has it and the device allows it; an explicit 'cuda' without it is an error."""
    import onnxruntime

    kind, index = parse_device(device, "stages.detect.device")
    available = onnxruntime.get_available_providers()
    if kind == "cpu" or (kind == "auto" and "CUDAExecutionProvider" not in available):
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise InputError("stages.detect.device", f"device {device!r} asks for CUDA, but this ONNX Runtime "
                         f"{onnxruntime.__version__} has no CUDAExecutionProvider (providers: {', '.join(available)}); "
                         "install onnxruntime-gpu, or use 'cpu' or 'auto'")
    return [("CUDAExecutionProvider", {"device_id": index or 0}), "CPUExecutionProvider"]


class YoloxDetect:
    """Frames -> class-agnostic YOLOX boxes and scores, one frame per ONNX Runtime call.

    Each setting's type and range is checked by the config schema; the weights file and the device here.
    """

    name = "yolox"
    reads = FRAMES
    makes_masks = False

    def __init__(self, weights: str | None = None, score_thresh: float = 0.05, nms_thresh: float = 0.6,
                 max_detections: int = 100, min_box_area: float = 0, batch_size: int = 8,
                 device: str = "auto") -> None:
        self.score_thresh, self.nms_thresh = float(score_thresh), float(nms_thresh)
        self.max_detections, self.min_box_area, self.batch_size = max_detections, float(min_box_area), batch_size
        self.weights_path: Path = resolve_known(WEIGHTS_ID, weights, _WEIGHTS)
        self._open(self.weights_path, _providers(device))
        self._weights_identity = {"id": WEIGHTS_ID if weights in (None, "") else None,
                                  **weights_identity(self.weights_path)}

    def _open(self, path: Path, providers: list[Any]) -> None:
        """Load the model and check it is a YOLOX export: square image input, (1, N, 5 + C) output with sigmoids."""
        import onnxruntime

        try:
            session = onnxruntime.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # protobuf parse errors, unsupported opsets, ...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(path, f"cannot load as an ONNX model ({first}) (setting {_WEIGHTS})") from exc
        inputs, outputs = session.get_inputs(), session.get_outputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        if shape is None or len(shape) != 4 or shape[1] != 3 or not isinstance(shape[2], int) or shape[2] != shape[3]:
            raise InputError(path, f"not a YOLOX export: expected one (1, 3, S, S) image input, got "
                             f"{[(i.name, i.shape) for i in inputs]} (setting {_WEIGHTS})")
        self.input_size, self._input_name = int(shape[2]), inputs[0].name
        rows = len(grid_and_strides(self.input_size)[0])
        out = outputs[0].shape if len(outputs) == 1 else None
        if (out is None or len(out) != 3 or (isinstance(out[1], int) and out[1] != rows)
                or not isinstance(out[2], int) or out[2] < 6):
            raise InputError(path, f"not a YOLOX export: expected one (1, {rows}, 5 + classes) output for a "
                             f"{self.input_size}px input, got {[(o.name, o.shape) for o in outputs]} "
                             f"(setting {_WEIGHTS})")
        self.num_classes = int(out[2]) - 5
        self._session = session
        probe = self._run(np.full((self.input_size, self.input_size, 3), PAD_VALUE, np.uint8))
        if probe[:, 4:].min() < 0 or probe[:, 4:].max() > 1:
            raise InputError(path, f"scores outside [0, 1]: expected YOLOX's export with sigmoid objectness and "
                             f"class scores (setting {_WEIGHTS})")

    def _run(self, padded_bgr: np.ndarray) -> np.ndarray:
        tensor = np.ascontiguousarray(padded_bgr.transpose(2, 0, 1)[None], dtype=np.float32)
        raw = self._session.run(None, {self._input_name: tensor})[0]
        return raw[0]

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": f"YOLOX ONNX, {self.num_classes} classes, class-agnostic",
                "input_size": self.input_size, "score": "objectness x max class score",
                "score_thresh": self.score_thresh, "nms_thresh": self.nms_thresh,
                "max_detections": self.max_detections, "min_box_area": self.min_box_area,
                "weights": self._weights_identity, "providers": self._session.get_providers()}

    def detect_frame(self, image_rgb: np.ndarray) -> Detections:
        padded, ratio = letterbox(np.ascontiguousarray(image_rgb[..., ::-1]), self.input_size)
        boxes, scores = decode_outputs(self._run(padded), self.input_size)
        keep = np.flatnonzero(scores >= self.score_thresh)
        boxes = to_frame(boxes[keep], ratio, image_rgb.shape[:2])
        scores = scores[keep]
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        sized = np.flatnonzero((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]) & (area >= self.min_box_area))
        boxes, scores = boxes[sized], scores[sized]
        kept = filter_detections(boxes, scores, self.score_thresh, self.nms_thresh, self.max_detections)
        return Detections(boxes[kept].astype(np.float32), scores[kept].astype(np.float32))

    def detect(self, batch: DetectBatch) -> list[Detections]:
        images = batch.images
        if images is None or images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError("the yolox backend needs (B, H, W, 3) uint8 images")
        return [self.detect_frame(image) for image in images]
