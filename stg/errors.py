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
    """A cached store is missing, incomplete, damaged or from an incompatible schema version."""


class DamagedStoreError(StoreError):
    """A finished store whose files no longer match what its writer recorded (a deleted, truncated or altered chunk,
    a missing array): the message names the store, the array, the frames the damaged chunk holds and how to
    recompute the store."""

    def __init__(self, store: str | Path, array: str, problem: str, frames: str = "", rule: str = "") -> None:
        self.store, self.array, self.problem, self.frames, self.rule = str(store), array, problem, frames, rule
        where = (f"array '{array}'" if array else "chunk record") + (f", {frames}" if frames else "")
        fix = f"delete it (rm -r {store}) and rerun the workflow, which rebuilds it"
        if rule:
            fix += f" (snakemake --forcerun {rule} recomputes every {rule} store)"
        super().__init__(f"{store}: damaged store: {where}: {problem}; recompute it: {fix}")

    def __reduce__(self):  # picklable across worker processes
        return (DamagedStoreError, (self.store, self.array, self.problem, self.frames, self.rule))
