"""Atomic writes: build a folder or file in a temporary sibling, rename it into place only when complete.

A job killed midway (or a body that raises) leaves the target as it was, never half written, so
Snakemake and readers only ever see finished artifacts. The temporary sibling sits in the same folder
as the target, so the final rename stays on one file system and is atomic.

A temporary sibling is named `.<name>.tmp-<host>-<pid>-<random>`. A job killed with SIGKILL cannot remove its
own, so every atomic write first removes the siblings of its target that this host's dead processes left (the
pid no longer exists); those of other hosts (shared file systems) and of live processes are kept.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


def _host() -> str:
    """This machine's name as it appears in temporary names (characters other than [A-Za-z0-9._-] become _)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"


def _sibling(path: Path, kind: str) -> Path:
    """A hidden, unique name next to path (`.<name>.<kind>-<host>-<pid>-<random>`)."""
    return path.parent / f".{path.name}.{kind}-{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    """Whether a process of this pid exists on this host (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists but is not ours
        return True
    return True


def remove_stale_siblings(path: Path) -> list[Path]:
    """Remove the temporary siblings of path (`.<name>.tmp-...` being built, `.<name>.old-...` moved aside) that a
    dead process of this host left behind; returns them. Siblings of live processes or other hosts are kept; ones
    named before the host was part of the name (`.<name>.tmp-<pid>-<random>`) are only reported, since their host
    is unknown."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:tmp|old)-(?:(?P<host>.+)-)?(?P<pid>\d+)-[0-9a-f]{{8}}$")
    host, removed = _host(), []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None:
            continue
        sibling, pid = Path(entry.path), int(match["pid"])
        if match["host"] is None:
            log.warning("%s: temporary left by an older stg (host unknown, pid %d); delete it by hand if no job is "
                        "writing %s", sibling, pid, path)
        elif match["host"] == host and not _pid_alive(pid):
            log.info("removing %s, left by process %d that no longer runs", sibling, pid)
            _remove(sibling)
            removed.append(sibling)
    return removed


def _drain_pending_writes(timeout: float = 60.0) -> None:
    """Wait until Zarr's background event loop has finished every write it still runs.

    Zarr writes chunks concurrently on its own thread; when one write fails (a full disk), the call raises at
    once while the others go on and recreate their folders: removing the temporary folder before they end
    leaves it behind. Called before a rename or a removal; a no-op when Zarr is not loaded.
    """
    import threading

    sync = sys.modules.get("zarr.core.sync")
    loop = getattr(sync, "loop", [None])[0] if sync is not None else None
    if loop is None or loop.is_closed() or not loop.is_running():
        return
    if threading.current_thread() is getattr(sync, "iothread", [None])[0]:
        return
    import asyncio

    async def others_done() -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    try:
        asyncio.run_coroutine_threadsafe(others_done(), loop).result(timeout + 5)
    except Exception as error:  # a stuck loop must not hide the body's own error
        log.debug("waiting for Zarr's pending writes failed: %s", error)


def _remove(path: Path, attempts: int = 5) -> None:
    """Remove a file or folder for good: after any pending Zarr writes into it, retried while it reappears."""
    for attempt in range(attempts):
        _drain_pending_writes()
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass
        if not path.exists() and not path.is_symlink():
            return
        time.sleep(0.05 * 2 ** attempt)
    log.warning("%s: could not remove this temporary; delete it by hand", path)


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
    remove_stale_siblings(path)
    temporary = _sibling(path, "tmp")
    temporary.mkdir()
    try:
        yield temporary
        _drain_pending_writes()  # every write has landed before the rename
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
    remove_stale_siblings(path)
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
