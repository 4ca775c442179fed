"""A run folder: palette PNGs of every video, DAVIS metrics, and run.json saying how it was made."""

from __future__ import annotations

import csv
import json
import logging
import platform
import resource
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stg import __version__
from stg.atomic import atomic_directory
from stg.palette import write_palette_png
from stg.store import open_store

log = logging.getLogger(__name__)

PACKAGES = ("numpy", "opencv-python-headless", "zarr", "numcodecs", "pillow", "snakemake", "torch", "torchvision",
            "scipy", "segmentation-models-pytorch", "mmdet", "mmcv")


def package_versions() -> dict[str, str]:
    versions = {"stg-vos": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def export_pngs(label_stores: list[Path], annotations: Path) -> list[str]:
    """Write every label store as Annotations/<video>/<frame>.png; returns the video names."""
    videos = []
    for path in tqdm(label_stores, desc="export PNGs", unit="video", leave=False):
        store = open_store(path, "labels")
        video = store.attrs["video"]
        folder = annotations / video
        folder.mkdir(parents=True, exist_ok=True)
        labels = store["labels"]
        for index, frame in enumerate(store.attrs["frame_names"]):
            write_palette_png(folder / f"{frame}.png", labels[index])
        videos.append(video)
    return videos


def read_benchmark(path: Path) -> dict[str, float]:
    """One Snakemake `benchmark:` TSV (seconds, max_rss in MB, cpu_time in s, ...)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    numbers = {}
    for key, value in rows[0].items():
        try:
            numbers[key] = float(value)
        except (TypeError, ValueError):
            continue
    return numbers


def summarise_benchmarks(paths: list[Path]) -> dict[str, dict[str, float]]:
    """Per stage: jobs, summed wall and CPU seconds, largest peak RSS (MB), from the job benchmarks.

    Benchmarks live at cache/<ds>/benchmarks/<stage>/<key>/<video>.tsv.
    """
    stages: dict[str, dict[str, float]] = {}
    for path in paths:
        stage = Path(path).parts[-3]
        numbers = read_benchmark(Path(path))
        summary = stages.setdefault(stage, {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0.0})
        summary["jobs"] += 1
        summary["wall_s"] += numbers.get("s", 0.0)
        summary["cpu_s"] += numbers.get("cpu_time", 0.0)
        summary["peak_rss_mb"] = max(summary["peak_rss_mb"], numbers.get("max_rss", 0.0))
    return stages


def store_identities(stores: dict[str, list[str]]) -> dict[str, Any]:
    """Backend and weights identity of each stage, read from its first store's attributes."""
    identities = {}
    for stage, paths in stores.items():
        if paths:
            attrs = open_store(Path(paths[0])).attrs.asdict()
            identities[stage] = {"backend": attrs.get("backend"), "key": attrs.get("key"),
                                 "settings": attrs.get("settings"), "source": attrs.get("source")}
            if attrs.get("segmenter"):  # an online graph's own segmenter (weights identity)
                identities[stage]["segmenter"] = attrs["segmenter"]
    return identities


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def write_submission_zip(annotations: Path, out: Path) -> Path:
    """`out` (a zip) holding `Annotations/<video>/<frame>.png`, as the YouTube-VOS evaluation server takes it."""
    import zipfile

    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(annotations.rglob("*.png")):
            archive.write(path, Path("Annotations") / path.relative_to(annotations))
    return out


def write_overlay_videos(dataset: Any, annotations: Path, folder: Path, videos: list[str], fps: float = 10.0
                         ) -> list[Path]:
    """One MJPG .avi per video: its frames with the run's masks drawn in DAVIS colours (stg.report.overlay)."""
    import cv2

    from stg.datasets import read_frame
    from stg.palette import read_png_labels
    from stg.report import overlay

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in videos:
        video = dataset.video(name)
        path = folder / f"{name}.avi"
        writer = None
        try:
            for frame_path in video.frame_paths:
                image = read_frame(frame_path)
                labels, _ = read_png_labels(annotations / name / f"{frame_path.stem}.png")
                drawn = overlay(image, labels, width=image.shape[1])
                if writer is None:
                    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps,
                                             (drawn.shape[1], drawn.shape[0]))
                    if not writer.isOpened():
                        raise OSError(f"OpenCV cannot write {path} (MJPG)")
                writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        finally:
            if writer is not None:
                writer.release()
        written.append(path)
    return written


def write_run(dataset_root: Path, split: str, label_stores: list[Path], out: Path, plan: dict[str, Any],
              benchmarks: list[Path], processes: int = 2, layout: str | None = None) -> dict[str, Any]:
    """Build the run folder in a temporary sibling, then rename it into place.

    `layout` (stg.datasets.LAYOUTS; default DAVIS, detected): a split without ground truth (YouTube-VOS valid /
    test, a folder) is not scored (a log line says so; run.json has `"scored": false`). YouTube-VOS runs add
    `submission.zip` (Annotations/<video>/<frame>.png, for the evaluation server); folder runs add
    `overlays/<video>.avi` (MJPG).
    """
    from stg.metrics.evaluate import run_metrics
    from stg.metrics.evaluation import NothingToScore

    out = Path(out)
    layout = None if layout in (None, "synthetic", "davis2017", "davis2016") else layout
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    with atomic_directory(out) as temporary:
        videos = export_pngs([Path(p) for p in label_stores], temporary / "Annotations")
        log.info("exported %d videos; scoring", len(videos))
        extra: dict[str, Any] = {}
        try:
            metrics = run_metrics(Path(dataset_root), temporary / "Annotations", split, temporary,
                                  processes=processes, layout=layout)
        except NothingToScore as error:
            log.warning("metrics skipped: %s", error)
            metrics = {"global": None}
            extra = {"scored": False, "not_scored_because": error.problem}
        if layout is not None:
            extra["layout"] = layout
            from stg.datasets import open_dataset

            dataset = open_dataset(Path(dataset_root), layout, split)
            if layout == "youtube_vos":
                write_submission_zip(temporary / "Annotations", temporary / "submission.zip")
                log.info("wrote %s", out / "submission.zip")
            if layout == "folder":
                write_overlay_videos(dataset, temporary / "Annotations", temporary / "overlays", videos)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        stages = summarise_benchmarks([Path(p) for p in benchmarks])
        stages["results"] = {"jobs": 1, "wall_s": time.perf_counter() - started_wall,
                             "cpu_s": time.process_time() - started_cpu + children.ru_utime + children.ru_stime,
                             "peak_rss_mb": _peak_rss_mb()}
        run = {
            "run": out.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "dataset_root": str(dataset_root),
            "split": split, "videos": videos, **plan, "stages_used": store_identities(plan.get("stores", {})),
            "timing": stages, "packages": package_versions(), "global": metrics["global"], **extra,
        }
        run.pop("stores", None)
        (temporary / "run.json").write_text(json.dumps(run, indent=2, default=str))
        segment_nodes = [node for node in plan.get("stores", {}) if node.split("@")[0] == "segment"]
        if segment_nodes:  # proposal recall / oracle J, stored by each segment job; the last pass's proposals
            from stg.proposals_report import stored_reports, write_proposal_summary

            last = max(segment_nodes, key=lambda node: int(node.partition("@")[2] or 1))
            reports, without = stored_reports(plan["stores"][last])
            write_proposal_summary(reports, temporary / "proposals.json", without_ground_truth=without)
        from stg.report import write_html_report  # last: it reads the files written above

        write_html_report(temporary, Path(dataset_root), split)
    return run
