"""What a finished store records about its chunk files, and the checks that find a damaged store.

`chunk_record` lists, per array, every chunk file with its byte size and crc32; `verify_store` compares a store
with its record (`sizes`: present with their sizes, about 15 ms for a DAVIS flow store; `full`: also the
checksums; `off`); `CheckedGroup` / `CheckedArray` turn a chunk that cannot be decoded into a DamagedStoreError
naming the store, the array and the chunk's frames, with the command that recomputes it.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterable
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from stg.errors import DamagedStoreError, StoreError

log = logging.getLogger(__name__)

RECORD_KEY = "chunk_record"  # root attribute: what the writer left, checked by open_store
VERIFY_ENV = "STG_VERIFY_STORES"  # sizes (default) | full (also crc32 of every chunk file) | off
VERIFY_LEVELS = ("sizes", "full", "off")
_unverified_warned = False


def _chunk_files(folder: Path, checksums: bool) -> dict[str, Any]:
    """An array folder's chunk files (every file but the array's zarr.json): key (path relative to the folder,
    e.g. `c/3/0/0/0`) -> byte size, or [byte size, crc32] with checksums."""
    files: dict[str, Any] = {}
    for directory, _, names in os.walk(folder):
        relative = Path(directory).relative_to(folder).as_posix()
        for name in names:
            key = name if relative == "." else f"{relative}/{name}"
            if key == "zarr.json":
                continue
            full = os.path.join(directory, name)
            if checksums:
                with open(full, "rb") as handle:
                    data = handle.read()
                files[key] = [len(data), zlib.crc32(data)]
            else:
                files[key] = os.stat(full).st_size
    return files


def chunk_record(root: Path, group: zarr.Group) -> dict[str, Any]:
    """What a finished store holds, for open_store to check: per array its shape, chunk shape and grid, the size of
    its zarr.json, its chunk count and every chunk file's [size, crc32]. All-zero chunks are never written by Zarr,
    so a chunk absent here is a fill-value chunk, while a recorded one that is gone is damage."""
    arrays = {}
    for name, array in sorted(group.members(max_depth=None), key=lambda member: member[0]):
        if not isinstance(array, zarr.Array):
            continue
        folder = Path(root) / name
        files = _chunk_files(folder, checksums=True)
        arrays[name] = {"shape": list(array.shape), "chunk_shape": list(array.chunks),
                        "grid": list(array.cdata_shape), "metadata_bytes": (folder / "zarr.json").stat().st_size,
                        "chunks": len(files), "files": files}
    return {"version": 1, "checksum": "crc32", "arrays": arrays}


def _verify_level(level: str | None) -> str:
    level = level or os.environ.get(VERIFY_ENV) or "sizes"
    if level not in VERIFY_LEVELS:
        raise StoreError(f"{VERIFY_ENV}={level}: expected one of {', '.join(VERIFY_LEVELS)}")
    return level


def _warn_unverified(path: Path) -> None:
    global _unverified_warned
    if _unverified_warned:
        log.debug("%s: store has no chunk record (written before stg recorded one); not verified", path)
        return
    _unverified_warned = True
    log.warning("%s: store has no chunk record (written before stg recorded one), so a deleted or damaged chunk "
                "cannot be detected; recompute it to make it verifiable (further such stores are logged at debug "
                "level)", path)


def _rule(attrs: dict[str, Any]) -> str:
    """The Snakemake rule that writes a store of these attributes (labels: the method's rule)."""
    stage = attrs.get("stage")
    if stage == "labels":
        return str(attrs.get("method") or "")
    return str(stage or "")


def _chunk_coords(key: str) -> tuple[int, ...] | None:
    parts = key.split("/")
    if parts[0] == "c":
        parts = parts[1:]
    elif len(parts) == 1:  # v2 key encoding: 3.0.0
        parts = key.split(".")
    try:
        return tuple(int(part) for part in parts)
    except ValueError:
        return None


def _frames_text(attrs: dict[str, Any], ranges: list[tuple[int, int]], offsets: np.ndarray | None,
                 ragged: bool) -> str:
    """First-axis entry ranges as frames: `frame 3 ('00003')`, `frames 3-5 ('00003'-'00005')`; rows of a ragged
    array (a store with `offsets`) map to the frames that own them."""
    ranges = [(start, stop) for start, stop in ranges if stop > start]
    if not ranges:
        return ""
    rows = ("rows " if len(ranges) > 1 or ranges[0][1] - ranges[0][0] > 1 else "row ") + \
        ", ".join(f"{a}-{b - 1}" if b - a > 1 else f"{a}" for a, b in ranges[:5]) + (", ..." if len(ranges) > 5 else "")
    if ragged and offsets is None:
        return rows
    frames: set[int] = set()
    for start, stop in ranges:
        if ragged:
            first = int(np.searchsorted(offsets, start, side="right")) - 1
            last = int(np.searchsorted(offsets, stop - 1, side="right")) - 1
            frames.update(range(max(first, 0), last + 1))
        else:
            frames.update(range(start, stop))
    names = list(attrs.get("frame_names") or [])

    def name(frame: int) -> str:
        return f"'{names[frame]}'" if 0 <= frame < len(names) else "?"

    runs: list[tuple[int, int]] = []
    for frame in sorted(frames):
        if runs and frame == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], frame)
        else:
            runs.append((frame, frame))
    parts = [f"{a} ({name(a)})" if a == b else f"{a}-{b} ({name(a)}-{name(b)})" for a, b in runs[:5]]
    text = ("frame " if len(frames) == 1 else "frames ") + ", ".join(parts) + (", ..." if len(runs) > 5 else "")
    return f"{rows} of {text}" if ragged else text


def _damage(root: Path, name: str, problem: str, keys: Iterable[str] = (), group: zarr.Group | None = None
            ) -> DamagedStoreError:
    """The error for damage in array `name` of the store at root, with the frames its chunk `keys` hold."""
    attrs: dict[str, Any] = {}
    try:
        group = group if group is not None else zarr.open_group(str(root), mode="r")
        attrs = group.attrs.asdict()
    except Exception:  # the root metadata itself may be what is damaged
        group = None
    record = attrs.get(RECORD_KEY)
    entry = record.get("arrays", {}).get(name) if isinstance(record, dict) else None
    shape = chunk_shape = None
    if isinstance(entry, dict):
        shape, chunk_shape = entry.get("shape"), entry.get("chunk_shape")
    elif group is not None:
        try:
            array = zarr.Group.__getitem__(group, name)
            shape, chunk_shape = list(array.shape), list(array.chunks)
        except Exception:
            pass
    ranges = []
    for key in keys:
        coords = _chunk_coords(key)
        if coords and shape and chunk_shape:
            start = coords[0] * chunk_shape[0]
            ranges.append((start, min(start + chunk_shape[0], shape[0])))
    ragged, offsets = False, None
    if ranges and group is not None and name != "offsets":
        try:
            ragged = "offsets" in group
            if ragged:
                offsets = np.asarray(zarr.Group.__getitem__(group, "offsets")[...], dtype=np.int64)
        except Exception:
            offsets = None
    return DamagedStoreError(root, name, problem, _frames_text(attrs, ranges, offsets, ragged), _rule(attrs))


def _listing(keys: list[str], limit: int = 3) -> str:
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")


def verify_store(path: Path, group: zarr.Group, level: str | None = None) -> None:
    """Check an opened store against its chunk record: every recorded array and chunk file present with its size
    (level `sizes`) and crc32 (`full`), nothing unrecorded; raises DamagedStoreError. A store without a record
    (written before stg recorded one) passes, with a warning once per process."""
    level = _verify_level(level)
    attrs = group.attrs.asdict()
    record = attrs.get(RECORD_KEY)
    if record is None:
        _warn_unverified(path)
        return
    if level == "off":
        return
    arrays = record.get("arrays") if isinstance(record, dict) else None
    if not isinstance(arrays, dict):
        raise DamagedStoreError(path, "", f"its attribute '{RECORD_KEY}' is unreadable", rule=_rule(attrs))
    full = level == "full"
    for name, entry in sorted(arrays.items()):
        folder = path / name
        if not (folder / "zarr.json").is_file():
            raise _damage(path, name, "the array is missing (its folder or zarr.json is gone)", group=group)
        try:
            files = {key: (int(value[0]), int(value[1])) for key, value in entry["files"].items()}
            metadata_bytes, count = int(entry["metadata_bytes"]), int(entry["chunks"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            raise _damage(path, name, f"its entry in the attribute '{RECORD_KEY}' is unreadable",
                          group=group) from None
        if count != len(files):
            raise _damage(path, name, f"the record lists {len(files)} chunk files but counts {count}: the "
                          f"attribute '{RECORD_KEY}' was altered", group=group)
        size = (folder / "zarr.json").stat().st_size
        if size != metadata_bytes:
            raise _damage(path, name, f"its zarr.json has {size} bytes, the record says {metadata_bytes}",
                          group=group)
        present = _chunk_files(folder, checksums=full)
        missing = sorted((key for key in files if key not in present), key=_chunk_coords_sort)
        if missing:
            raise _damage(path, name, f"{len(missing)} of {len(files)} chunk files are missing "
                          f"({_listing(missing)}): reading them would give zeros", missing, group=group)
        for key, (expected, crc) in files.items():
            found = present[key][0] if full else present[key]
            if found != expected:
                raise _damage(path, name, f"chunk file {key} has {found} bytes, the record says {expected} "
                              "(truncated or overwritten)", [key], group=group)
            if full and present[key][1] != crc:
                raise _damage(path, name, f"chunk file {key} fails its crc32 checksum (corrupt)", [key],
                              group=group)
        extra = sorted((key for key in present if key not in files), key=_chunk_coords_sort)
        if extra:
            raise _damage(path, name, f"chunk files not in the store's record ({_listing(extra)})", extra,
                          group=group)
    for entry in os.scandir(path):
        recorded = entry.name in arrays or any(name.startswith(f"{entry.name}/") for name in arrays)
        if entry.is_dir() and not recorded and (Path(entry.path) / "zarr.json").is_file():
            raise _damage(path, entry.name, f"the array is not in the store's record (attribute '{RECORD_KEY}')",
                          group=group)


def _chunk_coords_sort(key: str) -> tuple[Any, ...]:
    return (_chunk_coords(key) or (), key)


# ---------------------------------------------------------------------------------------------- checked reads


def _first_axis_chunks(selection: Any, shape: tuple[int, ...], chunks: tuple[int, ...], count: int) -> range:
    """Chunk indices along the first axis that a selection touches (all of them when it is not a plain one)."""
    first = selection[0] if isinstance(selection, tuple) and selection else selection
    if isinstance(first, int | np.integer) and shape[0]:
        index = int(first) % shape[0]
        return range(index // chunks[0], index // chunks[0] + 1)
    if isinstance(first, slice) and first.step in (None, 1):
        start, stop, _ = first.indices(shape[0])
        return range(start // chunks[0], (stop - 1) // chunks[0] + 1) if stop > start else range(0)
    return range(count)


class CheckedArray(zarr.Array):
    """An array of an opened store: a read that fails on a chunk that cannot be decoded (truncated, corrupt)
    raises DamagedStoreError naming the store, the array and the chunk's frames instead of a codec traceback."""

    def __getitem__(self, selection: Any) -> Any:
        try:
            return super().__getitem__(selection)
        except (StoreError, IndexError, TypeError):  # IndexError, TypeError: a bad selection, not damage
            raise
        except Exception as error:
            damage = self._find_damage(selection)
            if damage is None:
                raise
            raise damage from error

    def _find_damage(self, selection: Any) -> DamagedStoreError | None:
        """Read the selection's chunks one by one: the first that fails is the damaged one (None: none fails,
        the error was not damage)."""
        root = getattr(self.store, "root", None)
        if root is None:
            return None
        grid = self.cdata_shape
        if not grid:
            coords_list: Iterable[tuple[int, ...]] = [()]
        else:
            first = _first_axis_chunks(selection, self.shape, self.chunks, grid[0])
            coords_list = product(first, *(range(count) for count in grid[1:]))
        for coords in coords_list:
            region = tuple(slice(c * size, (c + 1) * size) for c, size in zip(coords, self.chunks, strict=True))
            try:
                zarr.Array.__getitem__(self, region)
            except Exception as error:
                key = self.metadata.encode_chunk_key(coords)
                return _damage(Path(root), self.path, f"chunk file {key} cannot be decoded ({type(error).__name__}: "
                               f"{error}): it is truncated or corrupt", [key])
        return None


class CheckedGroup(zarr.Group):
    """An opened store: its arrays are CheckedArrays, and a missing array is a DamagedStoreError."""

    def __getitem__(self, path: str) -> Any:
        root = Path(str(getattr(self.store, "root", self.store)))
        try:
            node = super().__getitem__(path)
        except KeyError:
            raise _damage(root, path, "the array is missing from the store") from None
        except Exception as error:  # an array's zarr.json that is not valid JSON, ...
            raise _damage(root, path, f"its metadata cannot be read ({type(error).__name__}: {error})") from error
        if isinstance(node, zarr.Array) and not isinstance(node, CheckedArray):
            return CheckedArray(node._async_array)
        return node
