"""Frame and annotation files: the one place they are listed and decoded.

Listing: frames are `.jpg` / `.jpeg` files (layouts other than DAVIS and YouTube-VOS add `.png`, `.bmp`) in any
letter case, annotations `.png` ones, both in natural order (numeric runs compared as numbers, so `2.jpg` comes
before `10.jpg`); two files with the same name but different extensions are an error, as is a folder without
frames (the message lists what the folder holds instead).

Decoding: OpenCV and PIL decode a truncated file's first rows with no more than a warning on
stderr, so every decode first checks that the file is complete (a JPEG ends with its end-of-image
marker FFD9, a PNG with its IEND chunk; trailing zero or whitespace padding is allowed) and that
the decoder returned an image. Both checks look at bytes already read: they cost nothing next to
the decode itself.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stg.errors import InputError

FRAME_EXTENSIONS = (".jpg", ".jpeg")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")  # frames of SegTrack-v2, YouTube-Objects and a user's folders
ANNOTATION_EXTENSIONS = (".png",)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: zero length, type, CRC
_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_PADDING = b"\x00 \t\r\n"
_TAIL = 4096  # bytes of the end searched for the end marker past any padding
_DIGITS = re.compile(r"([0-9]+)")
_SHOWN = 8  # file names quoted in a message


def natural_key(text: str) -> tuple[str | int, ...]:
    """Sort key comparing runs of ASCII digits as numbers: "2" < "10", "frame_9" < "frame_10".

    Text and number runs alternate (text first, possibly empty), so keys always compare like with like.
    """
    return tuple(int(part) if index % 2 else part for index, part in enumerate(_DIGITS.split(text)))


def _path_key(path: Path) -> tuple:
    """Natural order of the stems; the full name breaks ties ("7" and "007")."""
    return natural_key(path.stem), path.name


def natural_sorted(paths: list[Path] | tuple[Path, ...]) -> list[Path]:
    """Paths in natural order of their file names."""
    return sorted(paths, key=_path_key)


def _names(paths: list[Path]) -> str:
    names = [path.name for path in natural_sorted(paths)]
    more = f", ... ({len(names) - _SHOWN} more)" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _extensions(extensions: tuple[str, ...]) -> str:
    return ", ".join(f"*{extension}" for extension in extensions) + " (any letter case)"


def list_images(folder: Path, extensions: tuple[str, ...], what: str) -> tuple[list[Path], list[Path]]:
    """(matching files in natural order, every other entry) of a folder; hidden files never match.

    Two matching files with the same stem (`00001.jpg` and `00001.JPG`) are an InputError naming both.
    """
    folder = Path(folder)
    matching: list[Path] = []
    others: list[Path] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            path = folder / entry.name
            suffix = os.path.splitext(entry.name)[1].lower()
            if suffix in extensions and not entry.name.startswith(".") and entry.is_file():
                matching.append(path)
            else:
                others.append(path)
    by_stem: dict[str, list[Path]] = {}
    for path in matching:
        by_stem.setdefault(path.stem, []).append(path)
    clashes = sorted((stem for stem, paths in by_stem.items() if len(paths) > 1), key=natural_key)
    if clashes:
        stem = clashes[0]
        raise InputError(folder, f"{len(by_stem[stem])} {what} files share the name '{stem}' "
                         f"({_names(by_stem[stem])}): which one is meant is ambiguous; keep one"
                         + (f" ({len(clashes)} names clash: {', '.join(clashes[:_SHOWN])})" if len(clashes) > 1
                            else ""))
    return natural_sorted(matching), others


def list_frames(folder: Path, extensions: tuple[str, ...] = FRAME_EXTENSIONS) -> tuple[Path, ...]:
    """A video's frame files in natural order; none is an InputError saying what the folder holds instead."""
    frames, others = list_images(folder, extensions, "frame")
    if not frames:
        holds = f"it holds {len(others)} other entr{'y' if len(others) == 1 else 'ies'}: {_names(others)}" \
            if others else "it is empty"
        raise InputError(folder, f"video is empty: no frames named {_extensions(extensions)}; {holds}")
    return tuple(frames)


def list_annotations(folder: Path, extensions: tuple[str, ...] = ANNOTATION_EXTENSIONS) -> dict[str, Path]:
    """A video's annotation files by stem, in natural order."""
    annotations, _ = list_images(folder, extensions, "annotation")
    return {path.stem: path for path in annotations}


# ------------------------------------------------------------------------------------------------ decoding


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(path, f"{what} is missing") from None
    except OSError as error:
        raise InputError(path, f"{what} cannot be read ({error.strerror or error})") from None


def _ends_with(data: bytes, marker: bytes) -> bool:
    return data[-_TAIL:].rstrip(_PADDING).endswith(marker)


def incomplete(data: bytes) -> str | None:
    """Why a JPEG or PNG file's bytes are incomplete (truncated), or None when they look complete.

    Formats other than JPEG and PNG are left to the decoder.
    """
    if not data:
        return "the file is empty"
    if data.startswith(_JPEG_START) and not _ends_with(data, _JPEG_END):
        return "truncated JPEG: it does not end with the end-of-image marker FFD9"
    if data.startswith(PNG_SIGNATURE) and not _ends_with(data, _PNG_END):
        return "truncated PNG: it does not end with the IEND chunk"
    return None


def decode_frame(path: Path, data: bytes) -> np.ndarray:
    """An RGB uint8 image from a frame file's bytes, checked complete; an InputError names the file."""
    problem = incomplete(data)
    if problem is not None:
        raise InputError(path, f"frame image is corrupt or not an image ({problem})")
    import cv2  # OpenCV imports lazily: `stg metrics` never needs it (about 25 ms of its start-up)

    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(path, "frame image is corrupt or not an image (OpenCV cannot decode it)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frame_image(path: Path) -> np.ndarray:
    """An RGB uint8 frame; a missing, truncated or undecodable file is an InputError naming it."""
    return decode_frame(path, _read_bytes(path, "frame image"))


@contextmanager
def _strict_pil() -> Iterator[None]:
    """PIL raising on truncated data even if some other code allowed truncated images process-wide. PIL is imported
    here, when a mask needs it: `stg metrics` decodes common masks without it (about 6 ms of start-up)."""
    from PIL import ImageFile

    allowed = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = allowed


def check_png(path: Path | str, data: bytes) -> None:
    """A PNG's signature and final IEND chunk, else an InputError naming the file."""
    if not data.startswith(PNG_SIGNATURE):
        raise InputError(path, "cannot be read as a PNG image (it does not start with the PNG signature)")
    problem = incomplete(data)
    if problem is not None:
        raise InputError(path, f"cannot be read as a PNG image ({problem})")


def check_png_end(path: Path) -> None:
    """check_png on the file's first and last bytes only (two small reads), for callers decoding it elsewhere."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(PNG_SIGNATURE))
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(len(head), size - _TAIL))
            tail = handle.read()
    except FileNotFoundError:
        raise InputError(path, "file is missing") from None
    except OSError as error:
        raise InputError(path, f"cannot be read ({error.strerror or error})") from None
    check_png(path, head + tail)


def _binary_16bit(path: Path, values: np.ndarray, mode: str) -> np.ndarray:
    """A 16-bit greyscale mask as 0/1 labels when it is binary (0 and one other value), else an InputError."""
    present = np.unique(values)
    if present.size <= 2 and (present.size == 1 or present[0] == 0):
        return (values != 0).astype(np.uint8)
    shown = present[:_SHOWN].tolist()
    more = f", ... ({present.size} values)" if present.size > _SHOWN else ""
    raise InputError(path, f"16-bit greyscale mask (mode {mode}) holds values {shown}{more}: a 16-bit mask is "
                     "read only when binary (0 and one other value, one object); save multi-object masks as "
                     "8-bit palette PNGs (mode P)")


def decode_label_png(path: Path, data: bytes) -> tuple[np.ndarray, str]:
    """Raw pixel values of a checked-complete label PNG and its PIL mode ("P" palette, "L" greyscale, ...).

    Greyscale variants ("1", "LA": DAVIS 2016 has one LA mask with an opaque alpha) give their grey
    values; a binary 16-bit greyscale mask gives 0/1; other modes their raw array.
    """
    from PIL import Image

    check_png(path, data)
    try:
        with _strict_pil(), Image.open(io.BytesIO(data)) as image:
            image.load()
            mode = image.mode
            if mode in ("P", "L"):
                return np.asarray(image), mode
            if mode in ("1", "LA"):
                return np.asarray(image.convert("L")), mode
            if mode.startswith("I"):
                return _binary_16bit(path, np.asarray(image), mode), mode
            return np.asarray(image), mode
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(path, f"cannot be read as a PNG image ({error})") from None


def read_label_png(path: Path) -> tuple[np.ndarray, str]:
    """decode_label_png of a file; a missing, truncated or undecodable file is an InputError naming it."""
    return decode_label_png(path, _read_bytes(path, "file"))
