"""Which video names the pipeline accepts: a name becomes a folder, a store and a log file name and a command-line
argument, so it must be one plain file name. Spaces, quotes, unicode and shell characters are fine (the workflow
quotes every value it passes to a shell); these are not: empty, '.', '..', '/', NUL, newline or another control
character, '{' or '}', a leading '-', more than MAX_NAME_BYTES bytes of UTF-8."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from stg.errors import InputError

# A name's stores, logs and temporary siblings add up to ~40 bytes to it (`.<name>.zarr.tmp-<pid>-<hex>`); file
# systems allow 255 bytes per file name.
MAX_NAME_BYTES = 200


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a video name, or None when it can."""
    if not name:
        return "the name is empty"
    if name in (".", ".."):
        return "'.' and '..' are not folder names"
    if "/" in name:
        return "contains '/' (a video is one folder, not a path)"
    if "\x00" in name or "\n" in name:
        return "contains a NUL or newline character"
    control = [char for char in name if unicodedata.category(char) == "Cc"]
    if control:
        return f"contains the control character {control[0]!r}"
    if "{" in name or "}" in name:
        return "contains '{' or '}' (Snakemake reads them as wildcards in the file paths made from the name)"
    if name.startswith("-"):
        return "starts with '-' (commands would read it as an option)"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid unicode (cannot be a file name)"
    if size > MAX_NAME_BYTES:
        return f"is {size} bytes long; at most {MAX_NAME_BYTES} (file names are limited to 255 bytes)"
    return None


def check_video_name(name: str, split_file: str | Path) -> str:
    """`name` itself, or an InputError naming the split file that lists it, the name and the problem."""
    problem = name_problem(name)
    if problem is not None:
        raise InputError(split_file, f"video name {name!r} cannot be used: {problem}")
    return name
