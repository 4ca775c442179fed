"""Atomic writes: build a folder or file in a temporary sibling, rename it into place only when complete.

A job killed midway (or a body that raises) leaves the target as it was, never half written, so
Snakemake and readers only ever see finished artifacts. The temporary sibling sits in the same folder
as the target, so the final rename stays on one file system and is atomic.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _sibling(path: Path, kind: str) -> Path:
    """A hidden, unique name next to path (`.<name>.<kind>-<pid>-<random>`)."""
    return path.parent / f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _swap_into_place(temporary: Path, path: Path) -> None:
    """Rename temporary onto path; an existing path is moved aside first and deleted only after the swap.

    os.replace cannot replace a non-empty folder, and deleting the old one first would expose a
    half-deleted target; moving it aside keeps path either old or new at every moment but one rename.
    """
    if not path.exists() and not path.is_symlink():
        os.replace(temporary, path)
        return
    retired = _sibling(path, "old")
    os.replace(path, retired)
    try:
        os.replace(temporary, path)
    except BaseException:
        os.replace(retired, path)
        raise
    _remove(retired)


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling folder to fill; it replaces `path` when the body completes.

    If the body raises, the temporary folder is removed and `path` keeps its old content (or stays absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _sibling(path, "tmp")
    temporary.mkdir()
    try:
        yield temporary
        _swap_into_place(temporary, path)
    finally:
        if temporary.exists():
            _remove(temporary)


@contextmanager
def atomic_file(path: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """Yield a stream onto a temporary sibling file; it replaces `path` when the body completes.

    Text is written as UTF-8 with newlines untranslated. If the body raises, the temporary file is
    removed and `path` keeps its old content (or stays absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _sibling(path, "tmp")
    try:
        with (open(temporary, "xb") if binary else open(temporary, "x", encoding="utf-8", newline="")) as stream:
            yield stream
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write text to path through atomic_file."""
    with atomic_file(path) as stream:
        stream.write(text)
