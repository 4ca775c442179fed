"""Zarr v3 artifact stores: one per (stage, video), written atomically, versioned, self-describing."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from stg import __version__
from stg.errors import StoreError

SCHEMA_VERSION = 1


def _compressor(dtype: np.dtype) -> BloscCodec:
    """zstd for everything; byte shuffle helps floats, plain bytes suit uint8 masks."""
    shuffle = "shuffle" if np.dtype(dtype).kind == "f" else "noshuffle"
    return BloscCodec(cname="zstd", clevel=3, shuffle=shuffle)


class StoreBuilder:
    """A store under construction in a temporary sibling folder."""

    def __init__(self, group: zarr.Group) -> None:
        self.group = group

    def array(self, name: str, shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...] | None = None) -> zarr.Array:
        """An array chunked one frame (first axis entry) per chunk unless told otherwise."""
        if chunks is None:
            chunks = (1, *shape[1:]) if shape else ()
        chunks = tuple(max(1, c) for c in chunks)
        return self.group.create_array(name, shape=shape, chunks=chunks, dtype=dtype,
                                       compressors=_compressor(np.dtype(dtype)), fill_value=0)

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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        group = zarr.open_group(str(temporary), mode="w")
        builder = StoreBuilder(group)
        yield builder
        group.attrs.update({
            "schema_version": SCHEMA_VERSION,
            "stage": stage,
            "package_version": __version__,
            **attrs,
        })
        if path.exists():
            shutil.rmtree(path)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def open_store(path: Path, stage: str | None = None) -> zarr.Group:
    """Open a finished store read-only, refusing missing, foreign or incompatible ones."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path}: store is missing (run the stage that writes it)")
    group = zarr.open_group(str(path), mode="r")
    attrs = group.attrs.asdict()
    version = attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StoreError(f"{path}: store schema version {version} is not supported by stg {__version__} "
                         f"(expects {SCHEMA_VERSION}); delete it or recompute with --forcerun")
    if stage is not None and attrs.get("stage") != stage:
        raise StoreError(f"{path}: expected a '{stage}' store, found a '{attrs.get('stage')}' store")
    return group


def read_ragged(group: zarr.Group, name: str, frame: int) -> np.ndarray:
    """Rows of one frame of a ragged array."""
    offsets = group["offsets"]
    start, stop = int(offsets[frame]), int(offsets[frame + 1])
    return group[name][start:stop]
