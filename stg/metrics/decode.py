"""Mask PNG decoding: a fast path for the common 8-bit masks, PIL for everything else; values equal PIL's.

Scoring reads every ground-truth and result PNG once, and inflating plus unfiltering them dominates
the time; masks PIL and OpenCV write use only the None, Sub and Up row filters, decoded here in bulk.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stg.datasets.images import check_png, decode_label_png
from stg.errors import InputError

try:
    from stg.metrics import _kernels
except ImportError:  # built without a C compiler: numpy unfilters the None/Sub/Up rows, PIL the rest
    _kernels = None


def _inflate_function() -> Callable[[bytes, int, int], bytes]:
    """zlib-ng's inflate when installed (about 20x faster on mask PNGs, same bytes), else zlib's; called as
    (data, wbits, bufsize)."""
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return zlib.decompress
    return zlib_ng.decompress


_inflate = _inflate_function()
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {0: "L", 3: "P"}


def _png_chunks(data: bytes) -> tuple[tuple[int, ...], bytes] | None:
    """(IHDR fields, joined IDAT bytes) of a well-formed PNG with valid CRCs, else None."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    position, header, idat = len(_PNG_SIGNATURE), None, []
    while position + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if end > len(data):
            return None
        body = data[position + 8:end - 4]
        if zlib.crc32(body, zlib.crc32(kind)) != struct.unpack_from(">I", data, end - 4)[0]:
            return None
        if kind == b"IHDR" and length == 13:
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            return (header, b"".join(idat)) if header is not None else None
        position = end
    return None


def _row_prefix_sums(deltas: np.ndarray) -> np.ndarray:
    """Running sums mod 256 along each row (PNG "Sub" filter), computed only on the nonzero box.

    Left of the box the sums are 0; right of it they repeat the box's last column. The sums use
    log2(width) shifted in-place additions, far faster than np.cumsum on uint8 rows.
    """
    import cv2  # lazily: only the numpy path (no compiled kernel) uses OpenCV

    sums = np.zeros(deltas.shape, dtype=np.uint8)
    left, top, width, height = cv2.boundingRect(np.ascontiguousarray(deltas))
    if width == 0 or height == 0:
        return sums
    block = deltas[top:top + height, left:left + width].copy()
    step = 1
    while step < width:
        block[:, step:] += block[:, :-step]
        step *= 2
    sums[top:top + height, left:left + width] = block
    sums[top:top + height, left + width:] = block[:, -1:]
    return sums


def _undo_up(values: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Decode the rows filtered "Up" (row = delta + row above) once the other rows are decoded.

    With C the running sum down the columns of `values` (decoded rows and Up deltas alike), an
    Up row equals C[row] - C[base - 1], base being the last non-Up row above it (the implicit
    zero row above the image when there is none); mod-256 arithmetic makes this exact.
    """
    import cv2

    height = values.shape[0]
    decoded = np.zeros_like(values)
    left, _, width, _ = cv2.boundingRect(values)
    if width == 0:
        return decoded
    sums = np.zeros((height + 1, width), dtype=np.uint8)
    np.cumsum(values[:, left:left + width], axis=0, dtype=np.uint8, out=sums[1:])
    base = np.maximum.accumulate(np.where(up, 0, np.arange(height)))
    decoded[:, left:left + width] = sums[1:] - sums[base]
    return decoded


def _unfilter(filters: np.ndarray, pixels: np.ndarray) -> np.ndarray | None:
    """Pixel rows from PNG-filtered rows using None, Sub and Up; None for Average or Paeth."""
    if not filters.any():
        return pixels
    if (filters > 2).any():
        return None
    sub, up = filters == 1, filters == 2
    if sub.all():
        return _row_prefix_sums(pixels)
    values = np.ascontiguousarray(pixels).copy()
    if sub.any():
        values[sub] = _row_prefix_sums(pixels[sub])
    return _undo_up(values, up) if up.any() else values


@dataclass(frozen=True)
class PngRows:
    """The inflated image data of an 8-bit greyscale or palette PNG: a filter byte, then `width` bytes, per row."""

    width: int
    height: int
    mode: str
    rows: bytes


def png_rows(data: bytes) -> PngRows | None:
    """The inflated rows of a non-interlaced 8-bit greyscale or palette PNG with valid CRCs, else None (the caller
    falls back to PIL)."""
    parsed = _png_chunks(data)
    if parsed is None:
        return None
    (width, height, depth, colour, compression, filtering, interlace), idat = parsed
    if depth != 8 or colour not in _PNG_MODES or compression or filtering or interlace:
        return None
    try:
        # one byte more than the rows: the output buffer is allocated once and the end of the stream is seen in
        # it (an exact-size buffer is grown, copied and trimmed again to find the end: about 4x slower)
        raw = _inflate(idat, zlib.MAX_WBITS, height * (width + 1) + 1)
    except Exception:  # any decoder complaint means: let PIL decide
        return None
    if len(raw) != height * (width + 1):
        return None
    return PngRows(width, height, _PNG_MODES[colour], raw)


def fast_png_labels(data: bytes) -> tuple[np.ndarray, str] | None:
    """Raw values of an 8-bit greyscale or palette PNG whose rows use filter None, Sub or Up (any filter with the
    compiled kernel), else None.

    That covers the masks PIL writes (palette: no filter; greyscale: mostly None/Sub/Up) and
    DAVIS 2016's (greyscale, Sub). Anything else (interlacing, Average/Paeth rows, other depths
    or colour types, a bad CRC) returns None so that the caller falls back to PIL; the values
    equal PIL's either way. The array may be read-only.
    """
    png = png_rows(data)
    if png is None:
        return None
    width, height = png.width, png.height
    if _kernels is not None:
        pixels = _kernels.unfilter(png.rows, width, height)
        if pixels is None:
            return None
        return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width), png.mode
    rows = np.frombuffer(png.rows, dtype=np.uint8).reshape(height, width + 1)
    values = _unfilter(rows[:, 0], rows[:, 1:])
    return None if values is None else (values, png.mode)


def read_png_bytes(path: Path | str) -> bytes:
    """A PNG file's bytes, checked complete (signature, final IEND chunk); an InputError names the file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise InputError(path, "file is missing") from None
    except OSError as error:
        raise InputError(path, f"cannot be read ({error.strerror or error})") from None
    check_png(path, data)
    return data


def read_labels_once(path: Path) -> tuple[np.ndarray, str]:
    """Like `stg.datasets.images.read_label_png`, reading the file once and decoding common masks fast.

    The checks are the same on either path: the file must be a complete PNG (signature, final IEND chunk),
    and the fallback is decode_label_png itself, so a binary 16-bit mask reads as 0/1 and another 16-bit
    one is an InputError (never clipped to 8 bits).
    """
    data = read_png_bytes(path)
    decoded = fast_png_labels(data)
    if decoded is not None:
        return decoded
    return decode_label_png(Path(path), data)
