"""One exception type for bad user input, so the CLI can print it without a traceback."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input data or configuration; the message names the file (or key) and the problem."""

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # picklable across worker processes
        return (InputError, (self.where, self.problem))


class StoreError(Exception):
    """A cached store is missing, incomplete or from an incompatible schema version."""
