"""Frames of a video file (.mp4, .avi, .mov, .mkv), decoded with OpenCV on demand: nothing is extracted to disk.

A frame is referred to by a VideoFrame (the file and a frame index), which `read_frame` and `frame_size` accept
wherever they accept an image path, so code written for frame folders reads video files unchanged.

Frame i is found by decoding from the file's start (or onwards from the frame read last), never by seeking:
OpenCV's seek lands on a key frame for some codecs and would give a wrong frame without a word. Reading a video's
frames in order (read_frames, a stage looping over t) therefore decodes it once; reading them out of order costs a
decode up to each frame. The frame count is found by decoding the whole file once per process (container headers
only estimate it for some formats), so opening a long video is slow: extract long footage to a frame folder.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stg.errors import InputError

if TYPE_CHECKING:
    import cv2

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")
NAME_DIGITS = 5  # frame names are zero-padded indices: 00000, 00001, ...
_MAX_OPEN = 4  # video files kept open for reading on (most recently used first out)


@dataclass(frozen=True)
class VideoFrame:
    """Frame `index` of a video file: path-like enough for frame names and messages (stem, name, parent, str)."""

    video: Path
    index: int
    digits: int = NAME_DIGITS

    @property
    def stem(self) -> str:
        return f"{self.index:0{self.digits}d}"

    @property
    def name(self) -> str:
        return self.stem

    @property
    def parent(self) -> Path:
        return self.video

    def __str__(self) -> str:
        return f"{self.video} (frame {self.stem})"


def _file_key(path: Path) -> tuple[int, int]:
    """(size, modification time): a file replaced on disk is decoded afresh."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise InputError(path, "video file is missing") from None
    except OSError as error:
        raise InputError(path, f"video file cannot be read ({error.strerror or error})") from None
    return stat.st_size, stat.st_mtime_ns


def _open(path: Path) -> cv2.VideoCapture:
    import cv2  # OpenCV imports lazily: `stg metrics` never needs it (about 25 ms of its start-up)

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InputError(path, "OpenCV cannot decode this video file (unknown or damaged container or codec); "
                         "convert it (e.g. ffmpeg -i <file> -c:v libx264 out.mp4) or extract its frames to a folder")
    return capture


@lru_cache(maxsize=64)
def _probe(path: Path, key: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """(frame count, (H, W) of frame 0) by decoding the whole file; `key` only invalidates the cache."""
    capture = _open(path)
    try:
        ok, first = capture.read()
        if not ok or first is None:
            raise InputError(path, "video file has no frames that OpenCV can decode")
        count = 1
        while capture.grab():
            count += 1
    finally:
        capture.release()
    return count, (int(first.shape[0]), int(first.shape[1]))


def video_frame_count(path: Path) -> int:
    """How many frames OpenCV decodes from the file; an undecodable or frameless file is an InputError."""
    return _probe(Path(path), _file_key(Path(path)))[0]


def video_frames(path: Path) -> tuple[VideoFrame, ...]:
    """References to every frame of a video file, named by zero-padded index (wider past 99999 frames)."""
    path = Path(path)
    count = video_frame_count(path)
    digits = max(NAME_DIGITS, len(str(count - 1)))
    return tuple(VideoFrame(path, index, digits) for index in range(count))


def video_frame_size(frame: VideoFrame) -> tuple[int, int]:
    """(H, W) of the video's frames, as decoded (rotation metadata applied by OpenCV)."""
    return _probe(frame.video, _file_key(frame.video))[1]


@dataclass
class _Cursor:
    """An open decoder and the index of the frame it will return next."""

    key: tuple[int, int]
    capture: cv2.VideoCapture
    next_index: int
    pid: int


_cursors: OrderedDict[Path, _Cursor] = OrderedDict()
_lock = threading.Lock()


def _cursor(path: Path, key: tuple[int, int], index: int) -> _Cursor:
    """A decoder at or before `index`: the open one when it is, else the file opened afresh at frame 0."""
    cursor = _cursors.pop(path, None)
    if cursor is not None and (cursor.key != key or cursor.pid != os.getpid() or cursor.next_index > index):
        if cursor.pid == os.getpid():
            cursor.capture.release()
        cursor = None
    if cursor is None:
        cursor = _Cursor(key, _open(path), 0, os.getpid())
    _cursors[path] = cursor
    while len(_cursors) > _MAX_OPEN:
        _, oldest = _cursors.popitem(last=False)
        oldest.capture.release()
    return cursor


def _decode_at(cursor: _Cursor, frame: VideoFrame) -> np.ndarray | None:
    while cursor.next_index < frame.index:
        if not cursor.capture.grab():
            return None
        cursor.next_index += 1
    ok, image = cursor.capture.read()
    cursor.next_index += 1
    return image if ok else None


def read_video_frame(frame: VideoFrame) -> np.ndarray:
    """An RGB uint8 frame of a video file; a frame OpenCV cannot decode is an InputError naming file and frame."""
    key = _file_key(frame.video)
    with _lock:
        cursor = _cursor(frame.video, key, frame.index)
        image = _decode_at(cursor, frame)
        if image is None:
            _cursors.pop(frame.video).capture.release()
    if image is None:
        raise InputError(frame, "video frame cannot be decoded (the file ends before it or is damaged there)")
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def close_video_files() -> None:
    """Release every video file kept open for reading (they are also released when the process ends)."""
    with _lock:
        while _cursors:
            _, cursor = _cursors.popitem()
            if cursor.pid == os.getpid():
                cursor.capture.release()
