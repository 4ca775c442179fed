"""results/<run>/report.html: one self-contained page to look at a run.

Everything is embedded (charts and overlays as data: URIs, inline CSS, no scripts, nothing fetched),
so the file can be mailed, archived next to the numbers, or opened on a cluster login node.
Charts are matplotlib (Agg) PNGs; overlays draw the run's masks in DAVIS colours over the JPEGs.

Re-render an existing run folder: `python -m stg.report results/demo_val`.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from stg.errors import InputError
from stg.palette import colourise, read_png_labels
from stg.stages import STAGES

log = logging.getLogger(__name__)

STAGE_ORDER = ("synth", *STAGES, "results")  # the timing table's order: the stage table's, between synth and results
OVERLAY_WIDTH = 320
OVERLAY_ALPHA = 0.5
CHART_DPI = 100

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1200px;
color:#222;padding:0 16px}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.muted{color:#777}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0}figcaption{font-size:.85em;color:#555}
img{display:block;max-width:100%}.video{margin:12px 0}.video h3{margin:4px 0;font-size:1em}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:.85em}
"""


# ------------------------------------------------------------------ small helpers


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _esc(value)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _img(uri: str, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img src="{uri}" alt="{_esc(alt)}"{size}>'


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> str:
    """An HTML table; the first `left` columns are text (left-aligned), the rest numbers."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{_esc(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_num(v)}</td>' for i, v in enumerate(row))
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


# ------------------------------------------------------------------ charts (matplotlib, Agg, no pyplot state)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=CHART_DPI, layout="constrained")


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CHART_DPI)
    return _data_uri(buffer.getvalue(), "image/png")


def sequence_bar_chart(objects: dict[str, dict[str, float]]) -> str:
    """Horizontal grouped bars of J-Mean and F-Mean per object (DAVIS 'sequence_k' rows)."""
    names = list(objects)
    figure = _figure(7.5, max(1.6, 0.32 * len(names) + 0.9))
    axes = figure.add_subplot()
    positions = np.arange(len(names))
    axes.barh(positions - 0.2, [objects[n].get("J-Mean", 0.0) for n in names], height=0.4, label="J (region)",
              color="#4c72b0")
    axes.barh(positions + 0.2, [objects[n].get("F-Mean", 0.0) for n in names], height=0.4, label="F (boundary)",
              color="#dd8452")
    axes.set_yticks(positions, names, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("mean over frames")
    axes.grid(axis="x", alpha=0.3)
    figure.legend(loc="outside upper center", ncol=2, fontsize=8)
    return _png(figure)


def per_frame_chart(title: str, curves: dict[str, dict[str, Any]]) -> str:
    """J per frame of every object of one sequence (one line each)."""
    figure = _figure(3.8, 2.4)
    axes = figure.add_subplot()
    palette = colourise(np.arange(1, len(curves) + 1, dtype=np.uint8)) / 255.0
    for (name, curve), colour in zip(curves.items(), palette, strict=True):
        values = curve.get("J", [])
        frames = curve.get("frames", [])
        numbered = len(frames) == len(values) and all(str(f).isdigit() for f in frames)
        x = [int(f) for f in frames] if numbered else list(range(1, len(values) + 1))
        axes.plot(x, values, color=colour, linewidth=1.4, label=f"object {name.rsplit('_', 1)[-1]}")
    axes.set_ylim(0, 1.02)
    axes.set_title(title, fontsize=9)
    axes.set_xlabel("frame", fontsize=8)
    axes.set_ylabel("J", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower left")
    return _png(figure)


def timing_chart(timing: dict[str, dict[str, float]]) -> str:
    """Wall and CPU seconds (summed over a stage's jobs) and the largest peak RSS per stage."""
    stages = list(timing)
    figure = _figure(8.5, max(1.8, 0.35 * len(stages) + 1.0))
    left, right = figure.subplots(1, 2, sharey=True)
    positions = np.arange(len(stages))
    left.barh(positions - 0.2, [timing[s].get("wall_s", 0.0) for s in stages], height=0.4, label="wall",
              color="#4c72b0")
    left.barh(positions + 0.2, [timing[s].get("cpu_s", 0.0) for s in stages], height=0.4, label="CPU",
              color="#55a868")
    left.set_yticks(positions, stages, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("seconds (sum over jobs)")
    left.legend(fontsize=8)
    left.grid(axis="x", alpha=0.3)
    right.barh(positions, [timing[s].get("peak_rss_mb", 0.0) for s in stages], height=0.5, color="#c44e52")
    right.set_xlabel("peak RSS of one job (MB)")
    right.grid(axis="x", alpha=0.3)
    return _png(figure)


# ------------------------------------------------------------------ overlays


def overlay(frame: np.ndarray, labels: np.ndarray, width: int = OVERLAY_WIDTH) -> np.ndarray:
    """RGB frame with each object's mask blended in its DAVIS colour and its outline drawn solid."""
    if labels.shape != frame.shape[:2]:
        labels = cv2.resize(labels, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_NEAREST)
    colours = colourise(labels).astype(np.float32)
    out = frame.astype(np.float32)
    mask = (labels > 0)[..., None]
    out = np.where(mask, (1 - OVERLAY_ALPHA) * out + OVERLAY_ALPHA * colours, out)
    eroded = cv2.erode(labels, np.ones((3, 3), np.uint8))
    dilated = cv2.dilate(labels, np.ones((3, 3), np.uint8))
    edge = ((labels != eroded) | (labels != dilated)) & (labels > 0)
    out[edge] = colours[edge]
    out = np.clip(out, 0, 255).astype(np.uint8)
    if out.shape[1] > width:
        height = round(out.shape[0] * width / out.shape[1])
        out = cv2.resize(out, (width, height), interpolation=cv2.INTER_AREA)
    return out


def _jpeg_uri(rgb: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding of an overlay failed")
    return _data_uri(data.tobytes(), "image/jpeg")


def pick_frames(names: Sequence[str]) -> list[str]:
    """First, middle and last frame (fewer when the video is shorter)."""
    indices = sorted({0, (len(names) - 1) // 2, len(names) - 1}) if names else []
    return [names[i] for i in indices]


def video_overlays(run_dir: Path, dataset: Any, video: str) -> str:
    """Figures of one video's picked frames; a note instead when its frames cannot be read."""
    from stg.datasets import natural_sorted, read_frame

    pngs = {p.stem: p for p in natural_sorted(list((run_dir / "Annotations" / video).glob("*.png")))}
    try:
        frames = {p.stem: p for p in dataset.video(video).frame_paths}
        figures = []
        for name in pick_frames(list(pngs)):
            if name not in frames:
                raise InputError(pngs[name], "result frame has no JPEG of the same name in the dataset")
            labels, _ = read_png_labels(pngs[name])
            image = overlay(read_frame(frames[name]), labels)
            figures.append(f"<figure>{_img(_jpeg_uri(image), f'{video} frame {name}', image.shape[1])}"
                           f"<figcaption>frame {_esc(name)}</figcaption></figure>")
    except InputError as error:
        return f'<div class="video"><h3>{_esc(video)}</h3><p class="muted">no overlay: {_esc(error)}</p></div>'
    return f'<div class="video"><h3>{_esc(video)}</h3><div class="grid">{"".join(figures)}</div></div>'


# ------------------------------------------------------------------ sections


def _header(run: dict[str, Any]) -> str:
    rows = [("run", run.get("run")), ("dataset / split", f"{run.get('dataset')} / {run.get('split')}"),
            ("variant", run.get("variant")), ("method", run.get("method")),
            ("description", run.get("description", "")), ("videos", len(run.get("videos", []))),
            ("created", run.get("created")), ("stg-vos", run.get("packages", {}).get("stg-vos"))]
    body = "".join(f'<tr><th class="l">{_esc(k)}</th><td class="l">{_esc(v)}</td></tr>' for k, v in rows)
    keys = ", ".join(f"{_esc(stage)} <code>{_esc(key)}</code>" for stage, key in run.get("keys", {}).items())
    return f"<h1>Run {_esc(run.get('run'))}</h1><table>{body}</table><p>Stage keys: {keys}</p>"


def _global_section(metrics: dict[str, Any], run: dict[str, Any] | None = None) -> str:
    if (run or {}).get("scored") is False:
        why = (run or {}).get("not_scored_because", "the dataset has no ground truth")
        return f"<h2>Global results</h2><p>Nothing to score: {_esc(why)}. The masks are shown below.</p>"
    values = metrics.get("global", {})
    return "<h2>Global results</h2>" + _table(list(values), [list(values.values())], left=0)


def _sequence_section(metrics: dict[str, Any]) -> str:
    objects = metrics.get("objects", {})
    if not objects:
        return "<h2>Per sequence</h2><p class='muted'>no scored objects</p>"
    rows = [(name, v.get("J-Mean"), v.get("F-Mean"), v.get("J-Recall"), v.get("F-Recall"), v.get("J-Decay"),
             v.get("F-Decay")) for name, v in objects.items()]
    table = _table(["Sequence", "J-Mean", "F-Mean", "J-Recall", "F-Recall", "J-Decay", "F-Decay"], rows)
    return ("<h2>Per sequence: J and F</h2>" + _img(sequence_bar_chart(objects), "J and F per sequence")
            + f"<details><summary>table</summary>{table}</details>")


def _per_frame_section(metrics: dict[str, Any]) -> str:
    by_sequence: dict[str, dict[str, Any]] = {}
    for name, curve in metrics.get("per_frame", {}).items():
        by_sequence.setdefault(name.rsplit("_", 1)[0], {})[name] = curve
    charts = "".join(f"<figure>{_img(per_frame_chart(seq, curves), f'J per frame of {seq}')}</figure>"
                     for seq, curves in by_sequence.items())
    return "<h2>J per frame</h2>" + (f'<div class="grid">{charts}</div>' if charts
                                     else "<p class='muted'>metrics.json has no per-frame scores</p>")


def _overlay_section(run_dir: Path, run: dict[str, Any], dataset_root: Path, split: str) -> str:
    from stg.datasets import detect_layout, open_dataset

    intro = ("<h2>Qualitative results</h2><p>First, middle and last frame of each video; the run's masks in "
             "DAVIS colours over the input frames.</p>")
    try:
        layout = run.get("layout") or detect_layout(dataset_root, split)  # run.json names layouts other than DAVIS
        dataset = open_dataset(dataset_root, layout, split)
    except InputError as error:
        return intro + f"<p class='muted'>dataset not readable here: {_esc(error)}</p>"
    return intro + "".join(video_overlays(run_dir, dataset, video) for video in run.get("videos", []))


def _proposal_section(proposals: dict[str, Any] | None) -> str:
    title = "<h2>Proposals</h2>"
    if proposals is None:
        return title + "<p class='muted'>Proposal recall: not part of this run (it has no segment stage).</p>"
    overall = proposals.get("overall", {})
    threshold = overall.get("iou_threshold", 0.5)
    text = (f"<p>Recall: share of (object, frame) pairs with a proposal box of IoU &ge; {_num(threshold, 2)} with "
            "the ground-truth box. Oracle J: mean J of the best proposal mask per (object, frame), the ceiling "
            "of any selection.</p>")
    rows = [(video, v.get("frames"), v.get("mean_proposals_per_frame"), v.get("object_frames"), v.get("recall"),
             v.get("oracle_j")) for video, v in proposals.get("videos", {}).items()]
    rows.append(("all (pooled)", sum(int(r[1] or 0) for r in rows), overall.get("mean_proposals_per_frame"),
                 overall.get("object_frames"), overall.get("recall"), overall.get("oracle_j")))
    table = _table(["Video", "frames", "proposals / frame", "object-frames", "recall", "oracle J"], rows)
    without = proposals.get("without_ground_truth") or []
    note = (f"<p class='muted'>No ground truth beyond the first frame: {_esc(', '.join(without))}</p>"
            if without else "")
    return title + text + table + note


def _timing_section(run: dict[str, Any]) -> str:
    timing = run.get("timing", {})
    if not timing:
        return "<h2>Time and memory</h2><p class='muted'>run.json has no timing</p>"
    ordered = {s: timing[s] for s in STAGE_ORDER if s in timing} | {s: v for s, v in timing.items()
                                                                       if s not in STAGE_ORDER}
    rows = [(stage, int(v.get("jobs", 0)), v.get("wall_s"), v.get("cpu_s"), v.get("peak_rss_mb"))
            for stage, v in ordered.items()]
    table = _table(["stage", "jobs", "wall s (sum)", "CPU s (sum)", "peak RSS MB (max)"], rows)
    note = ("<p class='muted'>From each job's Snakemake <code>benchmark:</code> file (the results stage measures "
            "itself). Snakemake samples CPU time and memory every 0.5 s, then every 30 s after 15 s: wall time is "
            "exact, CPU time and peak RSS are lower bounds.</p>")
    return "<h2>Time and memory per stage</h2>" + _img(timing_chart(ordered), "time and memory per stage") \
        + table + note


def _details_section(run: dict[str, Any]) -> str:
    settings = json.dumps(run.get("settings", {}), indent=2, sort_keys=True)
    packages = json.dumps(run.get("packages", {}), indent=2, sort_keys=True)
    return (f"<h2>Settings</h2><details><summary>effective settings per stage</summary><pre>{_esc(settings)}</pre>"
            f"</details><details><summary>packages</summary><pre>{_esc(packages)}</pre></details>")


# ------------------------------------------------------------------ entry points


def render_report(run_dir: Path, dataset_root: Path, split: str) -> str:
    """The report's HTML, from the run folder's run.json, metrics.json, proposals.json and Annotations/."""
    run_dir = Path(run_dir)
    run = _read_json(run_dir / "run.json") or {}
    metrics = _read_json(run_dir / "metrics.json") or {}
    proposals = _read_json(run_dir / "proposals.json")
    sections = [_header(run), _global_section(metrics, run), _sequence_section(metrics), _per_frame_section(metrics),
                _overlay_section(run_dir, run, Path(dataset_root), split), _proposal_section(proposals),
                _timing_section(run), _details_section(run)]
    title = _esc(f"STG-Net run {run.get('run', run_dir.name)}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n")


def write_html_report(run_dir: Path, dataset_root: Path, split: str) -> Path:
    """Write run_dir/report.html; returns its path."""
    started = time.perf_counter()
    out = Path(run_dir) / "report.html"
    out.write_text(render_report(run_dir, dataset_root, split), encoding="utf-8")
    log.info("report %s written in %.1f s", out, time.perf_counter() - started)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stg.report", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder (results/<run>)")
    parser.add_argument("--dataset-root", type=Path, help="default: run.json's dataset_root")
    parser.add_argument("--split", help="default: run.json's split")
    args = parser.parse_args(argv)
    run = _read_json(args.run / "run.json") or {}
    root = args.dataset_root or Path(run.get("dataset_root", "."))
    print(write_html_report(args.run, root, args.split or run.get("split", "val")))


if __name__ == "__main__":
    main()
