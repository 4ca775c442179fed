"""How flow stores hold flow, and the one reader every stage uses.

The flow stage writes `forward` and `backward` (T-1, H, W, 2) in the encoding `stages.flow.encoding` picks:

- `int16` (default): fixed point with `scale = stages.flow.int16_scale` bins per pixel (default 8). A value f is
  stored as k = floor(f * scale) and read as (k + 1/2) / scale: the centre of its 1/scale px bin, so the error is
  at most half a bin (1/16 px by default) and the range +-32767.5 / scale px (+-4096 px); values beyond it, and
  non-finite ones (stored as k = 0), are clipped and counted. The read values are odd multiples of 1/(2 scale)
  px, never 0 or a multiple of 1/2 px: with round-to-nearest levels (k / scale), every flow within a bin of
  +-0.5 px became exactly 0.5 px, the bilinear warp of a binary mask then gives exactly 0.5 at the mask's
  edge, and the >= 0.5 threshold (warp's rebinarisation, propagate) decides all those ties one way, which moved
  `propagate` J by -0.007 (demo) and up to +-0.018 per DAVIS video (benchmarks/bench_flow_store.py).
  Each chunk (one frame pair) is stored planar, the dx plane then the dy plane (Zarr's transpose codec: the
  array's shape stays (T-1, H, W, 2)), byte-shuffled and zstd-compressed by Blosc in one block. About 0.3 MB per
  480p frame on DAVIS 2016 (float16: about 1.8 MB).
- `float16`: the format of stores before (about 1.8 MB per 480p frame).

Every array records its encoding in its own attributes (`FLOW_ATTR`): {"encoding", "scale", "offset", "step",
"clipped", ...}. `read_flow` turns either form, and stores written before the attribute existed (float arrays
without it), into float32 pixels; no reader scales the stored numbers itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, TransposeCodec

from stg.errors import StoreError
from stg.store import CheckedGroup, StoreBuilder, store_path

DIRECTIONS = ("forward", "backward")
ENCODINGS = ("int16", "float16")
FLOW_ATTR = "flow_encoding"  # array attribute: how the array's numbers map to pixels
INT16_MIN, INT16_MAX = -32768, 32767
OFFSET = 0.5  # read value = (stored + OFFSET) / scale: the bin's centre
# Blosc's zstd at clevel 5 with byte shuffle over the whole chunk (one block): measured by
# benchmarks/bench_flow_store.py against clevels 3 and 9, bit shuffle, lz4, plain zstd and the interleaved layout.
INT16_COMPRESSOR = {"cname": "zstd", "clevel": 5, "shuffle": "shuffle"}
PLANAR = TransposeCodec(order=(0, 3, 1, 2))  # (1, H, W, 2) chunk -> (1, 2, H, W): the dx plane, then dy


def quantise_flow(flow: np.ndarray, scale: int) -> tuple[np.ndarray, int]:
    """float flow (px) -> (int16 bin indices floor(flow * scale), count of values clipped to the int16 range or
    not finite; those are stored as 0)."""
    scaled = np.floor(np.asarray(flow, dtype=np.float32) * np.float32(scale))
    finite = np.isfinite(scaled)
    scaled = np.where(finite, scaled, np.float32(0.0))
    clipped = int(np.count_nonzero(~finite)) + int(np.count_nonzero((scaled < INT16_MIN) | (scaled > INT16_MAX)))
    return np.clip(scaled, INT16_MIN, INT16_MAX).astype(np.int16), clipped


def dequantise_flow(values: np.ndarray, scale: int, offset: float = OFFSET) -> np.ndarray:
    """int16 bin indices -> float32 px, the bins' centres (exact for power-of-two scales)."""
    return (np.asarray(values).astype(np.float32) + np.float32(offset)) / np.float32(scale)


class FlowWriter:
    """The `forward` and `backward` arrays of a flow store under construction, in one encoding."""

    def __init__(self, store: StoreBuilder, pairs: int, height: int, width: int, encoding: str = "int16",
                 scale: int = 8) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"flow encoding '{encoding}': expected one of {', '.join(ENCODINGS)}")
        self.encoding, self.scale = encoding, int(scale)
        self.clipped = dict.fromkeys(DIRECTIONS, 0)
        shape = (pairs, height, width, 2)
        if encoding == "int16":
            codec = BloscCodec(**INT16_COMPRESSOR, typesize=2, blocksize=height * width * 2 * 2)  # one block
            self.arrays = {name: store.array(name, shape, np.int16, compressor=codec, filters=[PLANAR])
                           for name in DIRECTIONS}
        else:
            self.arrays = {name: store.array(name, shape, np.float16) for name in DIRECTIONS}

    def write(self, direction: str, start: int, flow: np.ndarray) -> None:
        """Flow pairs start, start+1, ... of one direction, (B, H, W, 2) float px."""
        if self.encoding == "int16":
            values, clipped = quantise_flow(flow, self.scale)
            self.clipped[direction] += clipped
        else:
            values = np.asarray(flow).astype(np.float16)
        self.arrays[direction][start:start + len(values)] = values

    def finish(self) -> dict[str, Any]:
        """Record each array's encoding in its attributes (before build_store records the chunks); returns it."""
        for direction, array in self.arrays.items():
            array.attrs[FLOW_ATTR] = self.describe(direction)
        return {direction: self.describe(direction) for direction in DIRECTIONS}

    def describe(self, direction: str) -> dict[str, Any]:
        if self.encoding == "int16":
            return {"encoding": "int16", "unit": "px", "scale": self.scale, "offset": OFFSET,
                    "read_as": "(value + offset) / scale", "step": 1.0 / self.scale,
                    "max_error": 0.5 / self.scale, "range": (INT16_MAX + OFFSET) / self.scale,
                    "clipped": self.clipped[direction]}
        return {"encoding": "float16", "unit": "px"}


def flow_encoding(group: zarr.Group, direction: str) -> dict[str, Any]:
    """An array's recorded encoding; a float array without one (a store written before encodings were recorded)
    reads as {"encoding": <its dtype>}."""
    array = _array(group, direction)
    recorded = array.attrs.get(FLOW_ATTR)
    if isinstance(recorded, dict):
        return dict(recorded)
    return {"encoding": str(array.dtype)}


def read_flow(group: zarr.Group, direction: str, index: Any = slice(None)) -> np.ndarray:
    """Flow of a store in float32 px: pair `index` (an int: (H, W, 2); a slice: (N, H, W, 2); default: all).

    Decodes int16 stores with their recorded scale and offset and passes float stores (float16, float32; also
    those written before encodings were recorded) through as float32. A damaged chunk raises DamagedStoreError
    (CheckedGroup), an int16 array without a usable encoding attribute a StoreError naming the store."""
    if direction not in DIRECTIONS:
        raise ValueError(f"flow direction '{direction}': expected one of {', '.join(DIRECTIONS)}")
    array = _array(group, direction)
    values = np.asarray(array[index])
    if array.dtype.kind == "f":
        return values.astype(np.float32, copy=False)
    recorded = array.attrs.get(FLOW_ATTR)
    usable = isinstance(recorded, dict) and recorded.get("encoding") == "int16" and array.dtype == np.int16
    scale, offset = (recorded.get("scale"), recorded.get("offset")) if usable else (None, None)
    if not (isinstance(scale, int) and not isinstance(scale, bool) and scale >= 1
            and isinstance(offset, int | float) and not isinstance(offset, bool)):
        raise StoreError(f"{store_path(group)}: flow array '{direction}' is {array.dtype} without a usable "
                         f"'{FLOW_ATTR}' attribute (recorded: {recorded!r}); recompute the store (snakemake "
                         "--forcerun flow)")
    return dequantise_flow(values, scale, offset)


def _array(group: zarr.Group, direction: str) -> zarr.Array:
    checked = group if isinstance(group, CheckedGroup) else CheckedGroup(group._async_group)
    return checked[direction]
