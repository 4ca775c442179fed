"""DAVIS label PNGs: palette colours, reading labels, writing palette images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from stg.datasets.images import read_label_png


def davis_palette() -> np.ndarray:
    """The 256-colour palette of DAVIS annotations (the PASCAL VOC bit-interleaved colour map)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        red = green = blue = 0
        code = index
        for bit in range(8):
            red |= ((code >> 0) & 1) << (7 - bit)
            green |= ((code >> 1) & 1) << (7 - bit)
            blue |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        palette[index] = (red, green, blue)
    return palette


_PALETTE_BYTES = davis_palette().tobytes()


def read_png_labels(path: Path) -> tuple[np.ndarray, str]:
    """Raw pixel values of a label PNG and its PIL mode ("P" palette, "L" greyscale, ...).

    stg.datasets.images.read_label_png, the one label decoder: a truncated file is an InputError naming it,
    greyscale variants ("1", "LA") give their grey values, a binary 16-bit mask gives 0/1 and another
    16-bit mask is an InputError (never clipped to 8 bits).
    """
    return read_label_png(path)


def write_palette_png(path: Path, labels: np.ndarray) -> None:
    """Write a label map (uint8, 0 = background, k = object k) as a DAVIS palette PNG."""
    if labels.dtype != np.uint8 or labels.ndim != 2:
        raise ValueError(f"label map must be 2-D uint8, got {labels.dtype} {labels.shape}")
    image = Image.fromarray(labels, mode="P")
    image.putpalette(_PALETTE_BYTES)
    image.save(path, format="PNG")


def colourise(labels: np.ndarray) -> np.ndarray:
    """RGB image of a label map in DAVIS colours (for overlays and reports)."""
    return davis_palette()[labels]
