"""DAVIS semi-supervised evaluation: plan the file pairs, score them in chunks over processes, summarise.

Numbers equal the official davis2017-evaluation toolkit (docs METRICS.md); unlike it, this
never reads or writes CSVs in the results folder, reads each PNG once, and splits the work
over processes in chunks of frames.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stg.datasets import detect_layout, open_dataset
from stg.errors import InputError
from stg.metrics import measures
from stg.metrics.measures import frame_scores, scores_from_counts, tolerance_radius
from stg.metrics.reading import (
    DAVIS_LAYOUTS,
    SequencePlan,
    fast_pair_counts,
    plan_sequence,
    read_gt_labels,
    read_result_labels,
    read_scored_labels,
)
from stg.metrics.summary import Scores, summarise

MAX_CHUNK_FRAMES = 64
MIN_CHUNK_FRAMES = 4


@dataclass(frozen=True)
class Chunk:
    """Consecutive scored frames of one sequence: everything a worker needs, nothing to re-read."""

    sequence: str
    start: int
    layout: str
    num_objects: int
    shape: tuple[int, int]
    gt_paths: tuple[Path, ...]
    result_paths: tuple[str, ...]


@dataclass(frozen=True)
class ChunkFailure:
    """An InputError raised in a worker, carried back as plain fields (InputError does not pickle)."""

    where: str
    problem: str


def score_chunk(chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    """J and F arrays of shape (frames, K) for one chunk (runs in a worker).

    DAVIS frames go straight from their PNG rows to pixel counts in the compiled kernel where it is built; a frame
    it does not take (and every frame without it) is read as label maps and scored by frame_scores.
    """
    radius = tolerance_radius(*chunk.shape)
    count = len(chunk.gt_paths)
    j_values = np.empty((count, chunk.num_objects), dtype=np.float64)
    f_values = np.empty((count, chunk.num_objects), dtype=np.float64)
    fast = (chunk.layout in DAVIS_LAYOUTS and radius <= measures.KERNEL_MAX_RADIUS
            and chunk.num_objects <= measures.KERNEL_MAX_OBJECTS)
    for index, (gt_path, result_path) in enumerate(zip(chunk.gt_paths, chunk.result_paths, strict=True)):
        counts = (fast_pair_counts(gt_path, result_path, chunk.layout, chunk.shape, chunk.num_objects, radius)
                  if fast else None)
        if counts is not None:
            j_values[index], f_values[index] = scores_from_counts(counts)
            continue
        gt = (read_gt_labels(gt_path, chunk.layout, chunk.shape) if chunk.layout in DAVIS_LAYOUTS
              else read_scored_labels(gt_path, chunk.layout, chunk.shape))
        res = read_result_labels(result_path, chunk.shape, chunk.num_objects)
        j_values[index], f_values[index] = frame_scores(gt, res, chunk.num_objects, radius)
    return j_values, f_values


def _score_chunk_safely(chunk: Chunk) -> tuple[np.ndarray, np.ndarray] | ChunkFailure:
    """score_chunk with InputError turned into a picklable value."""
    try:
        return score_chunk(chunk)
    except InputError as error:
        return ChunkFailure(error.where, error.problem)


def chunk_size(total_frames: int, processes: int) -> int:
    """Frames per chunk: about 8 chunks per process, so that long sequences do not idle a core."""
    target = math.ceil(total_frames / max(1, processes * 8))
    return max(MIN_CHUNK_FRAMES, min(MAX_CHUNK_FRAMES, target))


def split_chunks(plan: SequencePlan, size: int) -> list[Chunk]:
    """The plan's scored frames cut into consecutive chunks of at most `size` frames."""
    return [Chunk(plan.name, start, plan.layout, plan.num_objects, plan.shape,
                  plan.gt_paths[start:start + size], plan.result_paths[start:start + size])
            for start in range(0, len(plan.frames), size)]


def keep_freed_memory() -> bool:
    """Let this process's allocator keep the frame buffers it frees (glibc; the compiled kernel's setting): mapping
    them anew for every frame made a worker fault about 800 kB of fresh pages per frame, as much time as the scoring.
    True where it applies. The workers always call it; `stg metrics` for its own process too."""
    return bool(measures._kernels is not None and measures._kernels.keep_freed_memory())


def _prepare_worker() -> None:
    """The processes are the parallelism: OpenCV's own threads would oversubscribe the cores. Only the numpy path
    (no compiled kernel) uses OpenCV, so only then is it imported. Freed frame buffers are kept for reuse."""
    keep_freed_memory()
    if measures._kernels is None or "cv2" in sys.modules:
        import cv2

        cv2.setNumThreads(1)


def _threads_of_this_process() -> int:
    """OS threads of this process (Python's and native ones alike); 0 where /proc does not say."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def _worker_context() -> multiprocessing.context.BaseContext:
    """Fork while this process has one thread, else a forkserver whose server has this module imported.

    Fork is the cheapest start (no interpreter start-up, no re-import, no resource tracker process)
    and is safe with a single thread. With more (zarr's event-loop thread, torch/OpenMP threads, when
    a pipeline process calls evaluate) a lock may be held at fork time and deadlock the children,
    so those get a forkserver preloaded with this module.
    """
    if _threads_of_this_process() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _start_forkserver(processes: int) -> None:
    """Start the forkserver now, when workers will need one, so that its imports (about 0.1 s) overlap
    with planning."""
    if processes > 1 and _worker_context().get_start_method() == "forkserver":
        import multiprocessing.forkserver  # only then: its imports (tempfile, ...) are start-up time otherwise

        multiprocessing.forkserver.ensure_running()


def _new_pool(processes: int, workers_needed: int) -> ProcessPoolExecutor | None:
    """A pool of min(processes, workers_needed) workers; None to score inline (one process or one chunk). Its
    workers are forked at the first submit, before any thread of ours exists (the pool's manager thread and the
    progress bar's monitor come after them)."""
    if processes <= 1 or workers_needed <= 1:
        return None
    return ProcessPoolExecutor(max_workers=min(processes, workers_needed), initializer=_prepare_worker,
                               mp_context=_worker_context())


class _NoBar:
    """The progress bar where none is shown."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, count: int = 1) -> None:
        return None


def _progress_bar(total: int, progress: bool) -> Any:
    """tqdm's bar on a terminal (tqdm's own rule for disable=None), imported only then: 16 ms of start-up."""
    if not (progress and sys.stderr.isatty()):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="metrics", unit="seq", file=sys.stderr, leave=False)


def _outcomes(futures: dict[Future, Chunk], planned: list[SequencePlan], size: int, pooled: bool
              ) -> Iterator[tuple[Chunk, object]]:
    """(chunk, outcome) as the pool's chunks complete, or scored one after another inline."""
    if pooled:
        for future in as_completed(futures):
            yield futures[future], future.result()
        return
    for plan in planned:
        for chunk in split_chunks(plan, size):
            yield chunk, _score_chunk_safely(chunk)


def score_plans(plans: Iterable[SequencePlan], sequences: int, processes: int, progress: bool
                ) -> tuple[list[SequencePlan], dict[str, Scores]]:
    """(the plans, per sequence J and F arrays (scored frames, K)), scoring chunks in parallel processes.

    `plans` may be lazy (planning reads each sequence's first mask and checks its files): with a pool, each
    sequence's chunks are submitted as soon as it is planned, so the workers score the first sequences while the
    main process plans the rest. An InputError from planning or scoring cancels the chunks not started yet.
    Inline (one process) every sequence is planned before any is scored.
    """
    pending = iter(plans)
    first = next(pending, None)
    if first is None:
        return [], {}
    size = chunk_size(len(first.frames) * sequences, processes)  # the first sequence's length stands for all
    first_chunks = split_chunks(first, size)
    pool = _new_pool(processes, len(first_chunks) if sequences == 1 else processes)
    planned: list[SequencePlan] = []
    futures: dict[Future, Chunk] = {}
    parts: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    try:
        for plan in itertools.chain([first], pending):
            planned.append(plan)
            parts[plan.name] = {}
            if pool is not None:
                for chunk in first_chunks if plan is first else split_chunks(plan, size):
                    futures[pool.submit(_score_chunk_safely, chunk)] = chunk
        remaining = {plan.name: math.ceil(len(plan.frames) / size) for plan in planned}
        with _progress_bar(len(planned), progress) as bar:
            for chunk, outcome in _outcomes(futures, planned, size, pool is not None):
                if isinstance(outcome, ChunkFailure):
                    raise InputError(outcome.where, outcome.problem)
                parts[chunk.sequence][chunk.start] = outcome  # type: ignore[assignment]
                remaining[chunk.sequence] -= 1
                if remaining[chunk.sequence] == 0:
                    bar.update(1)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    scores: dict[str, Scores] = {}
    for plan in planned:
        ordered = [parts[plan.name][start] for start in sorted(parts[plan.name])]
        scores[plan.name] = (np.concatenate([part[0] for part in ordered]),
                             np.concatenate([part[1] for part in ordered]))
    return planned, scores


class NothingToScore(InputError):
    """The dataset split has no ground truth to score against (YouTube-VOS valid / test, a folder)."""


def evaluate(davis_root: Path, results_dir: Path, split: str, processes: int = 2, resolution: str = "480p",
             progress: bool = True, layout: str | None = None) -> dict:
    """J, F and J&F of a results folder against a split of a DAVIS 2017- or 2016-layout dataset, or of another
    layout (`layout`: stg.datasets.LAYOUTS; default: DAVIS 2017 or 2016, detected). A split without ground truth
    raises NothingToScore.

    Returns {"global": {...}, "objects": {"<seq>_<k>": {...}}, "per_frame": {"<seq>_<k>":
    {"frames", "J", "F"}}}; raises InputError naming the file for any bad or missing input.
    With processes > 1 the workers are forked, or come from a forkserver when this process runs other
    threads; a forkserver re-imports the __main__ script, so a script calling this must guard its top
    level with `if __name__ == "__main__":`.
    """
    davis_root, results_dir = Path(davis_root), Path(results_dir)
    _start_forkserver(processes)
    layout = detect_layout(davis_root, split, resolution) if layout in (None, "synthetic") else layout
    dataset = open_dataset(davis_root, layout, split, resolution)
    if not dataset.scorable:
        raise NothingToScore(davis_root, f"split '{split}' of this {layout} dataset has no ground truth to score "
                             "(its annotations only seed the objects)")
    if not results_dir.is_dir():
        raise InputError(results_dir, "results folder is missing")
    names = dataset.video_names()
    plans = (plan_sequence(dataset, name, results_dir) for name in names)
    if processes <= 1:
        plans = list(plans)  # inline: every file checked before any is scored
    planned, scores = score_plans(plans, len(names), processes, progress)
    return summarise(planned, scores)
