"""`stg compare RUN_A RUN_B [...]`: run folders side by side, as a printed table and one self-contained HTML page.

The first run is the reference; every delta is another run minus it (positive: better than the reference).
The numbers are the runs' own tables as written (global_results-<split>.csv, per-sequence_results-<split>.csv,
three decimals); the frames that differ most come from metrics.json's per-frame J, or, for a run whose
metrics.json has none, from scoring its masks against the ground truth; the images from the dataset its run.json
names. The page is built with stg.report's helpers: charts and overlays are embedded PNG/JPEG data: URIs, the CSS
is inline, there are no scripts and nothing is fetched.

Everything but `load_run` (reading) and `write_compare` (the atomic write) is a function of the loaded runs.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stg.errors import InputError

log = logging.getLogger(__name__)

MEANS = ("J&F-Mean", "J-Mean", "F-Mean")  # the printed table's columns, with their deltas
DEFAULT_FRAMES = 6
PANEL_WIDTH = 360  # three overlays (reference, other run, ground truth) fit the page's width side by side
SHOWN = 8  # names quoted in an error

Curves = dict[str, dict[str, Any]]  # metrics.json's per_frame: object -> {"frames", "J", "F"}


@dataclass(frozen=True)
class Run:
    """One run folder's tables (as written) and how it was made."""

    folder: Path
    info: dict[str, Any]  # run.json
    means: dict[str, float]  # global CSV: column -> value (NaN for an empty field)
    objects: dict[str, dict[str, float]]  # per-sequence CSV: object ('<sequence>_<k>') -> {"J-Mean", "F-Mean"}
    per_frame: Curves | None  # metrics.json's per-frame J and F, when it has them

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def split(self) -> str:
        return str(self.info["split"])

    @property
    def resolution(self) -> str:
        return str((self.info.get("settings") or {}).get("dataset", {}).get("resolution") or "480p")

    @property
    def dataset_root(self) -> Path | None:
        """run.json's dataset_root; a relative one is tried from here, then from the folder above results/."""
        text = self.info.get("dataset_root")
        if not text:
            return None
        root = Path(text)
        if root.is_absolute():
            return root
        for base in (Path.cwd(), self.folder.resolve().parent.parent):
            if (base / root).is_dir():
                return (base / root).resolve()
        return Path(os.path.normpath(Path.cwd() / root))


@dataclass(frozen=True)
class SequenceDelta:
    """One object row of the per-sequence tables: J&F-Mean = (J-Mean + F-Mean) / 2 of each run, and the deltas."""

    name: str
    reference: float
    other: float
    delta: float
    delta_j: float
    delta_f: float


@dataclass(frozen=True)
class FrameDifference:
    """One frame's J (mean over the objects both runs score there) in the reference and in the other run."""

    sequence: str
    frame: str
    j_reference: float
    j_other: float
    objects: int

    @property
    def delta(self) -> float:
        return self.j_other - self.j_reference


# ------------------------------------------------------------------ reading a run folder


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f", ... ({len(names) - SHOWN} more)" if len(names) > SHOWN else "")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(path, f"{what} is missing: not a run folder written by `stg results`?")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"{what} is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise InputError(path, f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """The rows of a results CSV, checked to have the columns needed."""
    if not path.is_file():
        raise InputError(path, "results table is missing: not a run folder written by `stg results`?")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(path, f"results table cannot be read ({error})") from None
    absent = [column for column in columns if column not in header]
    if absent:
        raise InputError(path, f"results table has no column {', '.join(absent)} (columns: {', '.join(header)})")
    if not rows:
        raise InputError(path, "results table has no rows")
    return rows


def _value(text: str | None, path: Path, column: str) -> float:
    """A CSV number; an empty field (NaN, as pandas writes it) is NaN."""
    if text is None or not text.strip():
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise InputError(path, f"column {column} holds '{text}', not a number") from None


def load_run(folder: Path) -> Run:
    """A run folder's run.json, metrics.json and both CSVs; a missing or unreadable one is an InputError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "run folder is missing" if not folder.exists() else "is a file, not a run folder")
    info = _read_json(folder / "run.json", "run.json")
    if not info.get("split"):
        raise InputError(folder / "run.json", "run.json names no split")
    split = str(info["split"])
    metrics = _read_json(folder / "metrics.json", "metrics.json")
    global_path = folder / f"global_results-{split}.csv"
    row = _read_csv(global_path, MEANS)[0]
    means = {column: _value(row.get(column), global_path, column) for column in row if column}
    sequence_path = folder / f"per-sequence_results-{split}.csv"
    objects = {row["Sequence"]: {column: _value(row.get(column), sequence_path, column)
                                 for column in ("J-Mean", "F-Mean")}
               for row in _read_csv(sequence_path, ("Sequence", "J-Mean", "F-Mean"))}
    per_frame = metrics.get("per_frame")
    return Run(folder, info, means, objects, per_frame if isinstance(per_frame, dict) and per_frame else None)


def check_comparable(runs: Sequence[Run]) -> None:
    """Every run scores the reference's dataset split (root, split, resolution) on the same sequences."""
    reference = runs[0]
    for run in runs[1:]:
        pair = f"{reference.folder} vs {run.folder}"
        roots = reference.dataset_root, run.dataset_root
        same_root = None in roots or roots[0] == roots[1]
        if not same_root or (reference.split, reference.resolution) != (run.split, run.resolution):
            def describe(r: Run) -> str:
                return f"{r.folder}: split '{r.split}' ({r.resolution}) of {r.info.get('dataset_root', '?')}"

            raise InputError(pair, f"runs of different datasets or splits ({describe(reference)}; {describe(run)}); "
                             "compare runs of one dataset split")
        if set(reference.objects) != set(run.objects):
            only_reference = [name for name in reference.objects if name not in run.objects]
            only_other = [name for name in run.objects if name not in reference.objects]
            parts = ([f"only in {reference.folder}: {_listing(only_reference)}"] if only_reference else []) \
                + ([f"only in {run.folder}: {_listing(only_other)}"] if only_other else [])
            raise InputError(pair, f"runs cover different sequences ({'; '.join(parts)})")


def load_runs(folders: Sequence[Path]) -> list[Run]:
    """The runs, the first one the reference, checked to be comparable."""
    if len(folders) < 2:
        raise InputError("runs", f"compare needs at least two run folders, got {len(folders)}")
    runs = [load_run(Path(folder)) for folder in folders]
    check_comparable(runs)
    return runs


def run_labels(runs: Sequence[Run]) -> list[str]:
    """What a run is called in the table and on the page: its folder's name, or its path when names repeat."""
    names = [run.name for run in runs]
    return names if len(set(names)) == len(names) else [str(run.folder) for run in runs]


# ------------------------------------------------------------------ the numbers


def _delta(value: float, reference: float) -> float:
    """Difference of two table values, rounded to their 3 decimals (so 0.653 - 0.455 is 0.198, never -0.000)."""
    return round(value - reference, 3) + 0.0


def _signed(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:+.3f}"


def format_table(runs: Sequence[Run]) -> str:
    """One row per run: its J&F, J and F means as its global CSV has them, and each one's delta vs the reference."""
    reference = runs[0]
    labels = run_labels(runs)
    header = ["run", *MEANS, *(f"d{column}" for column in MEANS)]
    rows = []
    for index, (label, run) in enumerate(zip(labels, runs, strict=True)):
        values = [f"{run.means[column]:.3f}" for column in MEANS]
        deltas = ["reference", "", ""] if index == 0 else [_signed(_delta(run.means[column], reference.means[column]))
                                                          for column in MEANS]
        rows.append([label, *values, *deltas])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
             .rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def sequence_deltas(reference: Run, other: Run) -> list[SequenceDelta]:
    """Per object, the other run's J&F-Mean minus the reference's; largest gain first, NaN last, ties in table order."""
    rows = []
    for name, ref in reference.objects.items():
        run = other.objects[name]
        ref_jf, run_jf = (ref["J-Mean"] + ref["F-Mean"]) / 2, (run["J-Mean"] + run["F-Mean"]) / 2
        rows.append(SequenceDelta(name, ref_jf, run_jf, run_jf - ref_jf, _delta(run["J-Mean"], ref["J-Mean"]),
                                  _delta(run["F-Mean"], ref["F-Mean"])))
    return sorted(rows, key=lambda row: (math.isnan(row.delta), -row.delta if not math.isnan(row.delta) else 0.0))


def frame_j(curves: Curves) -> dict[tuple[str, str], dict[str, float]]:
    """(sequence, frame) -> {object: J} from metrics.json's per_frame (null scores left out)."""
    table: dict[tuple[str, str], dict[str, float]] = {}
    for name, curve in curves.items():
        sequence = name.rsplit("_", 1)[0]
        for frame, value in zip(curve.get("frames", []), curve.get("J", []), strict=False):
            if value is not None and not math.isnan(value):
                table.setdefault((sequence, str(frame)), {})[name] = float(value)
    return table


def largest_differences(reference: Curves, other: Curves, count: int) -> list[FrameDifference]:
    """The `count` frames whose J (mean over the objects both score) differs most; frames that agree are left out."""
    from stg.datasets import natural_key

    ref_table, other_table = frame_j(reference), frame_j(other)
    differences = []
    for key, ref_scores in ref_table.items():
        common = [name for name in ref_scores if name in other_table.get(key, {})]
        if not common:
            continue
        j_reference = float(np.mean([ref_scores[name] for name in common]))
        j_other = float(np.mean([other_table[key][name] for name in common]))
        if abs(j_other - j_reference) > 1e-12:
            differences.append(FrameDifference(key[0], key[1], j_reference, j_other, len(common)))
    differences.sort(key=lambda d: (-abs(d.delta), natural_key(d.sequence), natural_key(d.frame)))
    return differences[:count]


# ------------------------------------------------------------------ the page


def delta_chart(deltas: Sequence[SequenceDelta], title: str) -> str:
    """Horizontal bars of the per-object J&F-Mean deltas in the given (sorted) order, top to bottom, as a PNG URI."""
    from stg.report import _figure, _png

    values = [0.0 if math.isnan(d.delta) else d.delta for d in deltas]
    figure = _figure(7.5, max(1.6, 0.3 * len(deltas) + 1.0))
    axes = figure.add_subplot()
    positions = np.arange(len(deltas))
    colours = ["#55a868" if v > 0 else "#c44e52" if v < 0 else "#999999" for v in values]
    bars = axes.barh(positions, values, color=colours, height=0.6)
    axes.bar_label(bars, labels=[_signed(d.delta) for d in deltas], fontsize=7, padding=2)
    axes.set_yticks(positions, [d.name for d in deltas], fontsize=8)
    axes.invert_yaxis()
    reach = max([abs(v) for v in values] + [0.01]) * 1.25
    axes.set_xlim(-reach, reach)
    axes.axvline(0, color="#444444", linewidth=0.8)
    axes.set_xlabel("J&F-Mean delta (per object)", fontsize=8)
    axes.set_title(title, fontsize=9)
    axes.tick_params(labelsize=7)
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def _header(runs: Sequence[Run], labels: Sequence[str]) -> str:
    from stg.report import _esc, _table

    reference = runs[0]
    rows = [(label, str(run.folder), run.info.get("variant", ""), run.info.get("method", ""),
             run.info.get("description", ""), run.info.get("created", "")) for label, run in zip(labels, runs,
                                                                                                   strict=True)]
    return (f"<h1>Comparison of {len(runs)} runs</h1><p>Split <b>{_esc(reference.split)}</b> of "
            f"<code>{_esc(reference.info.get('dataset_root', '?'))}</code> ({len(reference.objects)} objects). "
            f"Reference: <b>{_esc(labels[0])}</b>; every delta is a run minus the reference (positive: better).</p>"
            + _table(["run", "folder", "variant", "method", "description", "created"], rows, left=6))


def _global_section(runs: Sequence[Run], labels: Sequence[str]) -> str:
    from stg.metrics.tables import GLOBAL_COLUMNS
    from stg.report import _table

    reference = runs[0]
    rest = [c for c in GLOBAL_COLUMNS if c not in MEANS]  # recall and decay, after the means and their deltas
    rows = []
    for index, (label, run) in enumerate(zip(labels, runs, strict=True)):
        deltas = ["reference", "", ""] if index == 0 else [_signed(_delta(run.means[c], reference.means[c]))
                                                          for c in MEANS]
        rows.append([label, *(run.means.get(c) for c in MEANS), *deltas, *(run.means.get(c) for c in rest)])
    header = ["run", *MEANS, *(f"Δ {c}" for c in MEANS), *rest]
    return '<h2>Global results</h2><div id="global">' + _table(header, rows) + "</div>"


def _sequence_section(reference: Run, other: Run, labels: tuple[str, str], number: int) -> str:
    from stg.report import _img, _table

    deltas = sequence_deltas(reference, other)
    chart = delta_chart(deltas, f"{labels[1]} minus {labels[0]}")
    rows = [(d.name, d.reference, d.other, _signed(d.delta), _signed(d.delta_j), _signed(d.delta_f)) for d in deltas]
    table = _table(["object", f"J&F {labels[0]}", f"J&F {labels[1]}", "Δ J&F", "Δ J", "Δ F"], rows)
    return ("<h3>Per sequence: J&amp;F-Mean delta, largest gain first</h3>"
            + _img(chart, f"per-sequence J&F delta of {labels[1]}")
            + f'<div class="deltas" id="deltas-{number}">{table}</div>')


class _Frames:
    """Reads the dataset's frames and ground truth for the overlays (each video listed once)."""

    def __init__(self, run: Run) -> None:
        from stg.datasets import detect_layout, open_dataset

        root = run.dataset_root
        if root is None:
            raise InputError(run.folder / "run.json", "run.json names no dataset_root")
        self.dataset = open_dataset(root, detect_layout(root, run.split, run.resolution), run.split,
                                    run.resolution)
        self.videos: dict[str, Any] = {}

    def video(self, name: str) -> Any:
        if name not in self.videos:
            self.videos[name] = self.dataset.video(name)
        return self.videos[name]


def _frame_figure(frames: _Frames, difference: FrameDifference, pair: tuple[Run, Run], labels: tuple[str, str]
                  ) -> str:
    """The frame with the reference's masks, the other run's masks and the ground truth, side by side."""
    from stg.datasets import read_frame
    from stg.metrics.reading import read_gt_labels
    from stg.palette import read_png_labels
    from stg.report import _esc, _img, _jpeg_uri, overlay

    sequence, frame = difference.sequence, difference.frame
    over = f" (mean over its {difference.objects} objects)" if difference.objects > 1 else ""
    title = (f"<h4>{_esc(sequence)} frame {_esc(frame)}: J {difference.j_reference:.3f} ({_esc(labels[0])}) vs "
             f"{difference.j_other:.3f} ({_esc(labels[1])}), Δ {_signed(difference.delta)}{_esc(over)}</h4>")
    try:
        video = frames.video(sequence)
        paths = {path.stem: path for path in video.frame_paths}
        if frame not in paths:
            raise InputError(video.frame_paths[0].parent / f"{frame}.jpg", "frame is missing in the dataset")
        image = read_frame(paths[frame])
        panels = []
        for run, label, j in zip(pair, labels, (difference.j_reference, difference.j_other), strict=True):
            masks, _ = read_png_labels(run.folder / "Annotations" / sequence / f"{frame}.png")
            panels.append((overlay(image, masks, PANEL_WIDTH), f"{label}: J {j:.3f}"))
        gt_path = video.annotation_paths.get(frame)
        if gt_path is not None:
            panels.append((overlay(image, read_gt_labels(gt_path, video.layout, image.shape[:2]), PANEL_WIDTH),
                           "ground truth"))
    except InputError as error:
        return f'<div class="video">{title}<p class="muted">no images: {_esc(error)}</p></div>'
    figures = "".join(f"<figure>{_img(_jpeg_uri(rgb), f'{sequence} {frame} {caption}', rgb.shape[1])}"
                      f"<figcaption>{_esc(caption)}</figcaption></figure>" for rgb, caption in panels)
    return f'<div class="video frame">{title}<div class="grid">{figures}</div></div>'


def per_frame_curves(run: Run) -> tuple[Curves | None, str]:
    """metrics.json's per-frame scores, else the run's masks scored against the ground truth; (None, why) if neither."""
    if run.per_frame:
        return run.per_frame, ""
    root = run.dataset_root
    if root is None:
        return None, f"{run.folder}/metrics.json has no per-frame scores and run.json names no dataset_root"
    from stg.metrics.evaluation import evaluate

    log.info("%s: metrics.json has no per-frame scores; scoring its masks against %s", run.folder, root)
    try:
        return evaluate(root, run.folder / "Annotations", run.split, processes=1, resolution=run.resolution,
                        progress=False)["per_frame"], ""
    except InputError as error:
        return None, f"{run.folder}/metrics.json has no per-frame scores and its masks cannot be scored ({error})"


def _frames_section(pair: tuple[Run, Run], labels: tuple[str, str], curves: tuple[Curves | None, Curves | None],
                    notes: tuple[str, str], count: int, frames: _Frames | str) -> str:
    from stg.report import _esc

    differences = largest_differences(curves[0], curves[1], count) if None not in curves else []
    title = (f"<h3>The {len(differences) or count} frames where J differs most</h3><p>Each frame with the masks of "
             f"{_esc(labels[0])}, of {_esc(labels[1])} and the ground truth; J is the frame's (mean over the objects "
             "both runs score).</p>")
    if curves[0] is None or curves[1] is None:
        return title + f"<p class='muted'>no per-frame J: {_esc(notes[0] or notes[1])}</p>"
    if not differences:
        return title + "<p class='muted'>the two runs score every frame the same</p>"
    if isinstance(frames, str):
        listing = "".join(f"<li>{_esc(d.sequence)} frame {_esc(d.frame)}: J {d.j_reference:.3f} vs "
                          f"{d.j_other:.3f}</li>" for d in differences)
        return title + f"<p class='muted'>dataset not readable here: {_esc(frames)}</p><ul>{listing}</ul>"
    return title + "".join(_frame_figure(frames, d, pair, labels) for d in differences)


def render_compare(runs: Sequence[Run], frames: int = DEFAULT_FRAMES) -> str:
    """The comparison page's HTML: the global table, then per other run its per-sequence deltas and frames."""
    from stg.report import CSS, _esc

    labels = run_labels(runs)
    reader: _Frames | str = ""
    if frames > 0:
        try:
            reader = _Frames(runs[0])
        except InputError as error:
            reader = str(error)
    curves = [per_frame_curves(run) if frames > 0 else (None, "") for run in runs]
    sections = [_header(runs, labels), _global_section(runs, labels)]
    for index in range(1, len(runs)):
        pair, names = (runs[0], runs[index]), (labels[0], labels[index])
        sections.append(f"<h2>{_esc(names[1])} vs {_esc(names[0])}</h2>")
        sections.append(_sequence_section(*pair, names, index))
        if frames > 0:
            sections.append(_frames_section(pair, names, (curves[0][0], curves[index][0]),
                                            (curves[0][1], curves[index][1]), frames, reader))
    title = _esc(f"STG-Net comparison: {', '.join(labels)}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n")


def write_compare(runs: Sequence[Run], out: Path, frames: int = DEFAULT_FRAMES) -> Path:
    """Render the page, then write it to `out` atomically (a failure leaves no partial file)."""
    from stg.atomic import write_text_atomic

    started = time.perf_counter()
    page = render_compare(runs, frames)
    write_text_atomic(out, page)
    log.info("comparison %s written in %.1f s", out, time.perf_counter() - started)
    return Path(out)
