"""DAVIS semi-supervised evaluation: read GT and results once, score in parallel, write tables.

Numbers equal the official davis2017-evaluation toolkit (docs METRICS.md); unlike it, this
never reads or writes CSVs in the results folder, reads each PNG once, and splits the work
over processes in chunks of frames.
"""

from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import multiprocessing.forkserver
import os
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from stg.datasets import VOID_LABEL, Dataset, detect_layout, open_dataset, read_first_mask
from stg.errors import InputError
from stg.metrics.measures import db_statistics, frame_scores, tolerance_radius
from stg.palette import read_png_labels

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")
MAX_CHUNK_FRAMES = 64
MIN_CHUNK_FRAMES = 4

Scores = tuple[np.ndarray, np.ndarray]  # J and F, each (scored frames, objects)


@dataclass(frozen=True)
class Chunk:
    """Consecutive scored frames of one sequence: everything a worker needs, nothing to re-read."""

    sequence: str
    start: int
    layout: str
    num_objects: int
    shape: tuple[int, int]
    gt_paths: tuple[Path, ...]
    result_paths: tuple[Path, ...]


@dataclass(frozen=True)
class ChunkFailure:
    """An InputError raised in a worker, carried back as plain fields (InputError does not pickle)."""

    where: str
    problem: str


# ---------------------------------------------------------------- reading one frame pair


def _inflate_function() -> Callable[[bytes], bytes]:
    """zlib-ng's inflate when installed (about 20x faster on mask PNGs, same bytes), else zlib's."""
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return zlib.decompress
    return zlib_ng.decompress


_inflate = _inflate_function()
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {0: "L", 3: "P"}


def _png_chunks(data: bytes) -> tuple[tuple[int, ...], bytes] | None:
    """(IHDR fields, joined IDAT bytes) of a well-formed PNG with valid CRCs, else None."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    position, header, idat = len(_PNG_SIGNATURE), None, []
    while position + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if end > len(data):
            return None
        body = data[position + 8:end - 4]
        if zlib.crc32(body, zlib.crc32(kind)) != struct.unpack_from(">I", data, end - 4)[0]:
            return None
        if kind == b"IHDR" and length == 13:
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            return (header, b"".join(idat)) if header is not None else None
        position = end
    return None


def _row_prefix_sums(deltas: np.ndarray) -> np.ndarray:
    """Running sums mod 256 along each row (PNG "Sub" filter), computed only on the nonzero box.

    Left of the box the sums are 0; right of it they repeat the box's last column. The sums use
    log2(width) shifted in-place additions, far faster than np.cumsum on uint8 rows.
    """
    sums = np.zeros(deltas.shape, dtype=np.uint8)
    left, top, width, height = cv2.boundingRect(np.ascontiguousarray(deltas))
    if width == 0 or height == 0:
        return sums
    block = deltas[top:top + height, left:left + width].copy()
    step = 1
    while step < width:
        block[:, step:] += block[:, :-step]
        step *= 2
    sums[top:top + height, left:left + width] = block
    sums[top:top + height, left + width:] = block[:, -1:]
    return sums


def _undo_up(values: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Decode the rows filtered "Up" (row = delta + row above) once the other rows are decoded.

    With C the running sum down the columns of `values` (decoded rows and Up deltas alike), an
    Up row equals C[row] - C[base - 1], base being the last non-Up row above it (the implicit
    zero row above the image when there is none); mod-256 arithmetic makes this exact.
    """
    height = values.shape[0]
    decoded = np.zeros_like(values)
    left, _, width, _ = cv2.boundingRect(values)
    if width == 0:
        return decoded
    sums = np.zeros((height + 1, width), dtype=np.uint8)
    np.cumsum(values[:, left:left + width], axis=0, dtype=np.uint8, out=sums[1:])
    base = np.maximum.accumulate(np.where(up, 0, np.arange(height)))
    decoded[:, left:left + width] = sums[1:] - sums[base]
    return decoded


def _unfilter(filters: np.ndarray, pixels: np.ndarray) -> np.ndarray | None:
    """Pixel rows from PNG-filtered rows using None, Sub and Up; None for Average or Paeth."""
    if not filters.any():
        return pixels
    if (filters > 2).any():
        return None
    sub, up = filters == 1, filters == 2
    if sub.all():
        return _row_prefix_sums(pixels)
    values = np.ascontiguousarray(pixels).copy()
    if sub.any():
        values[sub] = _row_prefix_sums(pixels[sub])
    return _undo_up(values, up) if up.any() else values


def fast_png_labels(data: bytes) -> tuple[np.ndarray, str] | None:
    """Raw values of an 8-bit greyscale or palette PNG whose rows use filter None, Sub or Up, else None.

    That covers the masks PIL writes (palette: no filter; greyscale: mostly None/Sub/Up) and
    DAVIS 2016's (greyscale, Sub). Anything else (interlacing, Average/Paeth rows, other depths
    or colour types, a bad CRC) returns None so that the caller falls back to PIL; the values
    equal PIL's either way. The array may be read-only.
    """
    parsed = _png_chunks(data)
    if parsed is None:
        return None
    (width, height, depth, colour, compression, filtering, interlace), idat = parsed
    if depth != 8 or colour not in _PNG_MODES or compression or filtering or interlace:
        return None
    try:
        raw = _inflate(idat)
    except Exception:  # any decoder complaint means: let PIL decide
        return None
    if len(raw) != height * (width + 1):
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width + 1)
    values = _unfilter(rows[:, 0], rows[:, 1:])
    return None if values is None else (values, _PNG_MODES[colour])


def read_labels_once(path: Path) -> tuple[np.ndarray, str]:
    """Like `stg.palette.read_png_labels`, reading the file once and decoding common masks fast."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file is missing") from None
    decoded = fast_png_labels(data)
    if decoded is not None:
        return decoded
    try:
        return read_png_labels(io.BytesIO(data))  # type: ignore[arg-type]
    except InputError as error:
        raise InputError(path, error.problem) from None


def read_gt_labels(path: Path, layout: str, shape: tuple[int, int]) -> np.ndarray:
    """GT label map with void (255) set to background, as the official semi-supervised task does.

    The checks are those of `stg.datasets.read_annotation` (single channel, frame size, DAVIS
    2017 multi-object masks in palette mode), on one fast read of the file. DAVIS 2016 masks
    become 0/1, and greyscale+alpha is accepted there: DAVIS 2016 itself ships one such file
    (bear/00077.png, opaque alpha), which `read_annotation` rejects.
    """
    values, mode = read_labels_once(path)
    if layout == "davis2016" and mode == "LA" and values.ndim == 3:
        values = values[:, :, 0]
    if values.ndim != 2:
        raise InputError(path, f"annotation must be a single-channel PNG, got mode {mode}")
    if values.shape != tuple(shape):
        raise InputError(path, f"mask size {values.shape[1]}x{values.shape[0]} differs from the first frame's "
                         f"{shape[1]}x{shape[0]}")
    if layout == "davis2016":
        return (values > 127).astype(np.uint8) if values.max(initial=0) > 1 else values.astype(np.uint8)
    labels = values.astype(np.uint8, copy=False)
    if mode != "P" and labels.max(initial=0) > 1:
        raise InputError(path, f"multi-object annotation is not a palette PNG (mode {mode}); DAVIS 2017 "
                         "masks must be mode P")
    return np.where(labels == VOID_LABEL, np.uint8(0), labels)


def read_result_labels(path: Path, shape: tuple[int, int], num_objects: int) -> np.ndarray:
    """Result label map; a label above K, a wrong size or a multi-channel PNG is an InputError."""
    values, mode = read_labels_once(path)
    if values.ndim != 2:
        raise InputError(path, f"result must be a single-channel (palette) PNG, got mode {mode}")
    if values.shape != tuple(shape):
        raise InputError(path, f"result size {values.shape[1]}x{values.shape[0]} differs from the ground "
                         f"truth's {shape[1]}x{shape[0]}")
    highest = int(values.max(initial=0))
    if highest > num_objects:
        raise InputError(path, f"label {highest} is above the sequence's {num_objects} object(s) "
                         "(the first ground-truth frame defines the objects)")
    return values.astype(np.uint8, copy=False)


def score_chunk(chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    """J and F arrays of shape (frames, K) for one chunk (runs in a worker)."""
    radius = tolerance_radius(*chunk.shape)
    count = len(chunk.gt_paths)
    j_values = np.empty((count, chunk.num_objects), dtype=np.float64)
    f_values = np.empty((count, chunk.num_objects), dtype=np.float64)
    for index, (gt_path, result_path) in enumerate(zip(chunk.gt_paths, chunk.result_paths, strict=True)):
        gt = read_gt_labels(gt_path, chunk.layout, chunk.shape)
        res = read_result_labels(result_path, chunk.shape, chunk.num_objects)
        j_values[index], f_values[index] = frame_scores(gt, res, chunk.num_objects, radius)
    return j_values, f_values


def _score_chunk_safely(chunk: Chunk) -> tuple[np.ndarray, np.ndarray] | ChunkFailure:
    """score_chunk with InputError turned into a picklable value."""
    try:
        return score_chunk(chunk)
    except InputError as error:
        return ChunkFailure(error.where, error.problem)


# ---------------------------------------------------------------- planning


@dataclass(frozen=True)
class SequencePlan:
    """One sequence's objects, frame size and the file pairs of its scored frames."""

    name: str
    layout: str
    num_objects: int
    shape: tuple[int, int]
    frames: tuple[str, ...]
    gt_paths: tuple[Path, ...]
    result_paths: tuple[Path, ...]


def plan_sequence(dataset: Dataset, name: str, results_dir: Path) -> SequencePlan:
    """Check that every file needed exists (reading no result PNG) and read K from the first GT."""
    video = dataset.video(name)
    names = video.frame_names
    if len(names) < 3:
        raise InputError(video.frame_paths[0].parent, f"sequence '{video.name}' has {len(names)} frame(s): "
                         "the first and last are not scored, so nothing is left to evaluate")
    first_labels, num_objects = read_first_mask(video)
    result_folder = results_dir / video.name
    if not result_folder.is_dir():
        raise InputError(result_folder, f"result folder of sequence '{video.name}' is missing")
    scored = tuple(names[1:-1])
    gt_paths: list[Path] = []
    result_paths: list[Path] = []
    for frame in scored:
        gt_path = video.annotation_paths.get(frame)
        if gt_path is None:
            expected = dataset.root / "Annotations" / dataset.resolution / video.name / f"{frame}.png"
            raise InputError(expected, "ground-truth annotation of a scored frame is missing")
        result_path = result_folder / f"{frame}.png"
        if not result_path.is_file():
            raise InputError(result_path, "result frame is missing")
        gt_paths.append(gt_path)
        result_paths.append(result_path)
    shape = (int(first_labels.shape[0]), int(first_labels.shape[1]))
    return SequencePlan(video.name, video.layout, num_objects, shape, scored, tuple(gt_paths), tuple(result_paths))


def chunk_size(total_frames: int, processes: int) -> int:
    """Frames per chunk: about 8 chunks per process, so that long sequences do not idle a core."""
    target = math.ceil(total_frames / max(1, processes * 8))
    return max(MIN_CHUNK_FRAMES, min(MAX_CHUNK_FRAMES, target))


def split_chunks(plan: SequencePlan, size: int) -> list[Chunk]:
    """The plan's scored frames cut into consecutive chunks of at most `size` frames."""
    return [Chunk(plan.name, start, plan.layout, plan.num_objects, plan.shape,
                  plan.gt_paths[start:start + size], plan.result_paths[start:start + size])
            for start in range(0, len(plan.frames), size)]


# ---------------------------------------------------------------- running


def _single_threaded_worker() -> None:
    """The processes are the parallelism: OpenCV's own threads would only oversubscribe the cores."""
    cv2.setNumThreads(1)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Forkserver context whose server has this module imported.

    Not fork: zarr's event-loop thread (and torch/OpenMP threads) may hold locks at fork time and
    deadlock the children. A forkserver preloaded with this module starts workers cheaply and cleanly.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _start_forkserver(processes: int) -> None:
    """Start the forkserver now, so that its imports (about 0.1 s) overlap with planning."""
    if processes > 1:
        _worker_context()
        multiprocessing.forkserver.ensure_running()


def _run_chunks(chunks: Sequence[Chunk], processes: int, on_done: Callable[[Chunk, object], None]) -> None:
    """Score every chunk, calling on_done(chunk, outcome) as each completes; inline when processes <= 1.

    If on_done raises (a bad input), chunks not started yet are cancelled rather than run for nothing.
    """
    if processes <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            on_done(chunk, _score_chunk_safely(chunk))
        return
    pool = ProcessPoolExecutor(max_workers=min(processes, len(chunks)), initializer=_single_threaded_worker,
                               mp_context=_worker_context())
    try:
        futures = {pool.submit(_score_chunk_safely, chunk): chunk for chunk in chunks}
        for future in as_completed(futures):
            on_done(futures[future], future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def score_plans(plans: Sequence[SequencePlan], processes: int, progress: bool) -> dict[str, Scores]:
    """Per sequence, J and F arrays (scored frames, K), scoring chunks in parallel processes."""
    size = chunk_size(sum(len(plan.frames) for plan in plans), processes)
    chunks = [chunk for plan in plans for chunk in split_chunks(plan, size)]
    remaining = {plan.name: math.ceil(len(plan.frames) / size) for plan in plans}
    parts: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {plan.name: {} for plan in plans}
    with tqdm(total=len(plans), desc="metrics", unit="seq", file=sys.stderr, disable=not progress,
              leave=False) as bar:

        def collect(chunk: Chunk, outcome: object) -> None:
            if isinstance(outcome, ChunkFailure):
                raise InputError(outcome.where, outcome.problem)
            parts[chunk.sequence][chunk.start] = outcome  # type: ignore[assignment]
            remaining[chunk.sequence] -= 1
            if remaining[chunk.sequence] == 0:
                bar.update(1)

        _run_chunks(chunks, processes, collect)
    scores: dict[str, Scores] = {}
    for plan in plans:
        ordered = [parts[plan.name][start] for start in sorted(parts[plan.name])]
        scores[plan.name] = (np.concatenate([part[0] for part in ordered]),
                             np.concatenate([part[1] for part in ordered]))
    return scores


def summarise(plans: Sequence[SequencePlan], scores: dict[str, Scores]) -> dict:
    """Per-object statistics and global means, in the official row order and operation order."""
    objects: dict[str, dict[str, float]] = {}
    per_frame: dict[str, dict[str, list[float]]] = {}
    for plan in plans:
        j_values, f_values = scores[plan.name]
        for index in range(plan.num_objects):
            name = f"{plan.name}_{index + 1}"
            j_mean, j_recall, j_decay = db_statistics(j_values[:, index])
            f_mean, f_recall, f_decay = db_statistics(f_values[:, index])
            objects[name] = {"J-Mean": j_mean, "J-Recall": j_recall, "J-Decay": j_decay,
                             "F-Mean": f_mean, "F-Recall": f_recall, "F-Decay": f_decay}
            per_frame[name] = {"frames": list(plan.frames), "J": j_values[:, index].tolist(),
                               "F": f_values[:, index].tolist()}
    return {"global": global_means(objects), "objects": objects, "per_frame": per_frame}


def global_means(objects: dict[str, dict[str, float]]) -> dict[str, float]:
    """Plain means over object rows (objects weigh equally); J&F-Mean = (J-Mean + F-Mean) / 2."""
    if not objects:
        raise InputError("objects", "no object was evaluated")

    def column(key: str) -> float:
        return float(np.mean([row[key] for row in objects.values()]))

    j_mean, f_mean = column("J-Mean"), column("F-Mean")
    return {"J&F-Mean": float((j_mean + f_mean) / 2.0), "J-Mean": j_mean, "J-Recall": column("J-Recall"),
            "J-Decay": column("J-Decay"), "F-Mean": f_mean, "F-Recall": column("F-Recall"),
            "F-Decay": column("F-Decay")}


def evaluate(davis_root: Path, results_dir: Path, split: str, processes: int = 2, resolution: str = "480p",
             progress: bool = True) -> dict:
    """J, F and J&F of a results folder against a DAVIS 2017- or 2016-layout split.

    Returns {"global": {...}, "objects": {"<seq>_<k>": {...}}, "per_frame": {"<seq>_<k>":
    {"frames", "J", "F"}}}; raises InputError naming the file for any bad or missing input.
    With processes > 1 the workers come from a forkserver, which re-imports the __main__ script:
    a script calling this must guard its top level with `if __name__ == "__main__":`.
    """
    davis_root, results_dir = Path(davis_root), Path(results_dir)
    _start_forkserver(processes)
    layout = detect_layout(davis_root, split, resolution)
    dataset = open_dataset(davis_root, layout, split, resolution)
    if not results_dir.is_dir():
        raise InputError(results_dir, "results folder is missing")
    plans = [plan_sequence(dataset, name, results_dir) for name in dataset.video_names()]
    scores = score_plans(plans, processes, progress)
    return summarise(plans, scores)


# ---------------------------------------------------------------- outputs


def _format_value(value: float | None) -> str:
    """pandas' to_csv(float_format="%.3f"): NaN becomes an empty field."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _csv_text(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(header))
    writer.writerows(list(row) for row in rows)
    return buffer.getvalue()


def global_csv(metrics: dict) -> str:
    """Text of global_results-<split>.csv (official columns, one row)."""
    values = metrics["global"]
    return _csv_text(GLOBAL_COLUMNS, [[_format_value(values[key]) for key in GLOBAL_COLUMNS]])


def sequence_csv(metrics: dict) -> str:
    """Text of per-sequence_results-<split>.csv: one row per object, in evaluation order."""
    rows = [[name, _format_value(row["J-Mean"]), _format_value(row["F-Mean"])]
            for name, row in metrics["objects"].items()]
    return _csv_text(SEQUENCE_COLUMNS, rows)


def _json_safe(value):
    """NaN/inf become null so that metrics.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder then os.replace, so readers never see half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_outputs(metrics: dict, out_dir: Path, split: str) -> None:
    """global_results-<split>.csv, per-sequence_results-<split>.csv and metrics.json (unrounded)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(out_dir / f"global_results-{split}.csv", global_csv(metrics))
    _write_atomic(out_dir / f"per-sequence_results-{split}.csv", sequence_csv(metrics))
    document = {"split": split, "global": metrics["global"], "objects": metrics["objects"]}
    if "per_frame" in metrics:
        document["per_frame"] = metrics["per_frame"]
    _write_atomic(out_dir / "metrics.json", json.dumps(_json_safe(document), indent=1) + "\n")


def format_global_table(metrics: dict, split: str | None = None) -> str:
    """The global table as right-aligned text, like the official tool's printout."""
    values = metrics["global"]
    cells = ["nan" if math.isnan(values[key]) else f"{values[key]:.6f}" for key in GLOBAL_COLUMNS]
    widths = [max(len(key), len(cell)) for key, cell in zip(GLOBAL_COLUMNS, cells, strict=True)]
    header = " ".join(key.rjust(width) for key, width in zip(GLOBAL_COLUMNS, widths, strict=True))
    row = " ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))
    title = f"Global results for {split}" if split else "Global results"
    return f"{'-' * 27} {title} {'-' * 27}\n{header}\n{row}"


def run_metrics(davis_root: Path, results_dir: Path, split: str, out_dir: Path, processes: int = 2) -> dict:
    """evaluate + write_outputs + print the global table: what `stg metrics` runs."""
    metrics = evaluate(Path(davis_root), Path(results_dir), split, processes=processes)
    write_outputs(metrics, Path(out_dir), split)
    print(format_global_table(metrics, split))
    return metrics
