"""Zarr v3 artifact stores: one per (stage, video), written atomically, versioned, self-describing, verifiable.

A finished store records in its attributes (`chunk_record`), for every array, its chunk files with their byte
sizes and crc32 checksums. `open_store` checks that every recorded chunk file is present with its size (about
15 ms for a DAVIS flow store of 160 chunk files); `STG_VERIFY_STORES=full` also checks the checksums (reads every
byte: about 0.1 s per 140 MB from the page cache), `off` skips the check. The arrays of an opened store turn a
chunk that cannot be decoded into the same DamagedStoreError, naming the store, the array and the chunk's frames.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from stg import __version__
from stg.atomic import atomic_directory
from stg.errors import DamagedStoreError, StoreError
from stg.store_verify import RECORD_KEY, CheckedGroup, chunk_record, verify_store

if TYPE_CHECKING:
    from stg.datasets import Video

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def _compressor(dtype: np.dtype) -> BloscCodec:
    """zstd for everything; byte shuffle helps floats, plain bytes suit uint8 masks."""
    shuffle = "shuffle" if np.dtype(dtype).kind == "f" else "noshuffle"
    return BloscCodec(cname="zstd", clevel=3, shuffle=shuffle)


class StoreBuilder:
    """A store under construction in a temporary sibling folder."""

    def __init__(self, group: zarr.Group) -> None:
        self.group = group

    def array(self, name: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...] | None = None,
              compressor: Any = None, filters: Any = None) -> zarr.Array:
        """An array chunked one frame (first axis entry) per chunk unless told otherwise.

        `compressor` (default: `_compressor` of the dtype) and `filters` (Zarr v3 array-to-array codecs, e.g. a
        TransposeCodec) let a stage pick its own encoding (the flow stage's, stg.flow.store)."""
        if chunks is None:
            chunks = (1, *shape[1:]) if shape else ()
        chunks = tuple(max(1, c) for c in chunks)
        return self.group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, filters=filters,
                                       compressors=compressor or _compressor(np.dtype(dtype)), fill_value=0)

    def ragged(self, name: str, rows_per_frame: list[np.ndarray], dtype: Any, chunk_rows: int | None = None) -> None:
        """Flat rows of all frames plus `offsets` (T+1): frame t owns rows offsets[t]:offsets[t+1].

        `chunk_rows=1` gives one chunk per row (e.g. one proposal mask per chunk); default: one chunk.
        """
        counts = [len(rows) for rows in rows_per_frame]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if "offsets" not in self.group.array_keys():
            self.array("offsets", offsets.shape, np.int64, chunks=offsets.shape)[:] = offsets
        else:
            existing = self.group["offsets"][:]
            if not np.array_equal(existing, offsets):
                raise ValueError(f"ragged array {name} does not match the store's offsets")
        flat = np.concatenate(rows_per_frame) if rows_per_frame else np.zeros((0,), dtype=dtype)
        flat = np.asarray(flat, dtype=dtype)
        rows = chunk_rows or max(1, len(flat))
        self.array(name, flat.shape, dtype, chunks=(rows, *flat.shape[1:]))[:] = flat


@contextmanager
def build_store(path: Path, stage: str, attrs: dict[str, Any]) -> Iterator[StoreBuilder]:
    """Build a store in a temporary sibling and rename it into place only when complete.

    A job killed midway leaves no store under `path`, so Snakemake and readers never see a
    half-written artifact.
    """
    with atomic_directory(path) as temporary:
        group = zarr.open_group(str(temporary), mode="w")
        yield StoreBuilder(group)
        group.attrs.update({
            "schema_version": SCHEMA_VERSION,
            "stage": stage,
            "package_version": __version__,
            **attrs,
            RECORD_KEY: chunk_record(temporary, group),
        })


# ---------------------------------------------------------------------------------------------- chunk record


def read_array(group: zarr.Group, name: str, path: str | Path | None = None) -> np.ndarray:
    """A whole array of a store, read with the damage checks of CheckedGroup (also for a group not opened by
    open_store); `path` names the store in errors (default: its folder)."""
    checked = group if isinstance(group, CheckedGroup) else CheckedGroup(group._async_group)
    try:
        return np.asarray(checked[name][...])
    except DamagedStoreError as error:
        if path is None or str(path) == error.store:
            raise
        raise DamagedStoreError(path, error.array, error.problem, error.frames, error.rule) from error


def open_store(path: Path, stage: str | None = None, verify: str | None = None) -> zarr.Group:
    """Open a finished store read-only, refusing missing, foreign, incompatible or damaged ones.

    `verify`: `sizes` (every recorded chunk file present with its size), `full` (also its crc32) or `off`;
    default: the STG_VERIFY_STORES environment variable, else `sizes`. See verify_store.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path}: is a file, not a store folder (a Zarr store is a folder with zarr.json)")
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path}: store is missing (run the stage that writes it)")
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = group.attrs.asdict()
    except Exception as error:  # a truncated or altered root zarr.json
        raise StoreError(f"{path}: damaged store: its zarr.json cannot be read ({type(error).__name__}: {error}); "
                         f"recompute it: delete it (rm -r {path}) and rerun the workflow, which rebuilds it") from None
    version = attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StoreError(f"{path}: store schema version {version} is not supported by stg {__version__} "
                         f"(expects {SCHEMA_VERSION}); delete it or recompute with --forcerun")
    if stage is not None and attrs.get("stage") != stage:
        raise StoreError(f"{path}: expected a '{stage}' store, found a '{attrs.get('stage')}' store")
    verify_store(path, group, verify)
    return CheckedGroup(group._async_group)


def store_path(group: zarr.Group) -> str:
    """Where an open store lives (its folder for local stores), for error messages."""
    root = getattr(group.store, "root", None)
    return str(root) if root is not None else str(group.store)


def check_store_matches(group: zarr.Group, path: str | Path, video: Video) -> None:
    """Refuse a store made for another video, or for other frames of it, so mixed-up caches fail loudly.

    The store's `video` attribute (when it has one) must name the video and its `frame_names` must
    equal the dataset's frames; the error names the store (`path`) and both videos.
    """
    stored_video = group.attrs.get("video")
    if stored_video and stored_video != video.name:
        raise StoreError(f"{path}: store is of video '{stored_video}', not '{video.name}'")
    if list(group.attrs.get("frame_names", [])) != list(video.frame_names):
        raise StoreError(f"{path}: frame names of the store (video '{stored_video or '?'}') differ from the "
                         f"dataset's frames of '{video.name}'")


def read_ragged(group: zarr.Group, name: str, frame: int, offsets: np.ndarray | None = None) -> np.ndarray:
    """Rows of one frame of a ragged array.

    Pass `offsets` (the store's `offsets` read once) when reading many frames, to skip re-reading them. A damaged
    chunk raises DamagedStoreError (see CheckedGroup), also for a group not opened by open_store.
    """
    if not isinstance(group, CheckedGroup):
        group = CheckedGroup(group._async_group)
    bounds = (group["offsets"] if offsets is None else offsets)[frame:frame + 2]
    start, stop = int(bounds[0]), int(bounds[1])
    array = group[name]
    if stop <= start:  # no read for an empty frame
        return np.zeros((0, *array.shape[1:]), array.dtype)
    return array[start:stop]
