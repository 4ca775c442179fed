"""OpenCV DIS optical flow (Kroeger et al. 2016): fast, CPU-only, no weights."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class DisFlow:
    """DIS on greyscale frames; one OpenCV object reused across pairs. Settings are checked by the schema."""

    name = "dis"

    def __init__(self, preset: str = "medium", batch_size: int = 4) -> None:
        self.preset, self.batch_size = preset, batch_size
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])

    def identity(self) -> dict[str, Any]:
        return {"backend": "dis", "preset": self.preset, "opencv": cv2.__version__, "weights": None}

    def flow(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        out = np.empty((*sources.shape[:3], 2), dtype=np.float32)
        for index, (source, target) in enumerate(zip(sources, targets, strict=True)):
            grey_source = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)
            grey_target = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY)
            out[index] = self._dis.calc(grey_source, grey_target, None)
        return out
