"""Time and peak memory of the DAVIS metrics stage against a plain one-process evaluator.

Usage (from the repository root):
    python benchmarks/bench_metrics.py [--processes 2] [--repeats 3] [--naive scipy|cv2|none]

Datasets: (a) 20 synthetic 854x480 videos (stg.datasets.synthetic, or random blobs when that
module is absent) with results = GT shifted/eroded/dropped; (b) the real DAVIS 2016 train
subset in ../shared/data/davis2016-train when present, with results = GT shifted by a few
pixels. Each evaluator runs in a fresh subprocess so that its wall time, CPU time and peak
resident memory are its alone: its own from getrusage, its worker processes' (and the
forkserver's) sampled with psutil every 20 ms, since getrusage cannot see them. The plain
evaluator (benchmarks/naive_davis_eval.py) re-reads PNGs per object and dilates with scipy
("scipy", like the toolkit's older skimage dilation) or full-frame cv2.dilate ("cv2", like
its current code). Both must give equal numbers; the script says so and prints a table.

A second table times whole processes side by side on a DAVIS-sized set (the 13 longest videos of
the DAVIS 2016 train subset, linked, not copied, into a scratch root): `stg metrics` through the
CLI in a fresh interpreter against the plain evaluator as a script, each from launch to exit, with
the CPU time (user+sys) of its whole process tree (this process is made the tree's subreaper, so
every descendant is reaped here and counted by getrusage(RUSAGE_CHILDREN)).
"""

from __future__ import annotations

import argparse
import compileall
import ctypes
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
REAL_DAVIS2016 = REPO.parent / "shared" / "data" / "davis2016-train"
DAVIS_SIZED_VIDEOS = 13  # the official DAVIS 2016 val set's order of size: about 13 videos, 1000 frames
PR_SET_CHILD_SUBREAPER = 36


# ---------------------------------------------------------------- one measured run (child process)


class ChildSampler(threading.Thread):
    """Peak RSS and CPU time of every descendant process, sampled every 20 ms.

    getrusage(RUSAGE_CHILDREN) misses the workers: they are forked by multiprocessing's
    forkserver, not by this process, and are never waited for here.
    """

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stopping = threading.Event()
        self.peak_rss: dict[int, int] = {}
        self.cpu: dict[int, float] = {}

    def run(self) -> None:
        me = psutil.Process()
        while not self.stopping.is_set():
            for child in me.children(recursive=True):
                try:
                    with child.oneshot():
                        rss, times = child.memory_info().rss, child.cpu_times()
                except psutil.Error:
                    continue
                self.peak_rss[child.pid] = max(self.peak_rss.get(child.pid, 0), rss)
                self.cpu[child.pid] = times.user + times.system
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def measure(mode: str, root: Path, results: Path, split: str, processes: int, output: Path) -> None:
    """Run one evaluator, write its metrics to `output` and print its costs as one JSON line."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from naive_davis_eval import naive_evaluate

    from stg.metrics.decode import _inflate
    from stg.metrics.evaluation import evaluate

    sampler = ChildSampler()
    sampler.start()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if mode == "fast":
        metrics = evaluate(root, results, split, processes=processes, progress=False)
    else:
        metrics = naive_evaluate(root, results, split, method=mode)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    sampler.stop()
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime + sum(sampler.cpu.values())
    output.write_text(json.dumps(metrics))
    print(json.dumps({"wall": wall, "cpu": cpu, "rss_self_mib": after.ru_maxrss / 1024,
                      "rss_child_mib": max(sampler.peak_rss.values(), default=0) / 2**20,
                      "children": len(sampler.peak_rss), "inflate": getattr(_inflate, "__module__", "zlib")}))


def run_measured(mode: str, root: Path, results: Path, split: str, processes: int, scratch: Path) -> tuple[dict, dict]:
    """(costs, metrics) of one evaluator run in a fresh interpreter."""
    output = scratch / f"metrics-{mode}.json"
    command = [sys.executable, __file__, "--measure", mode, str(root), str(results), split, str(processes),
               str(output)]
    completed = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(completed.stdout.strip().splitlines()[-1]), json.loads(output.read_text())


# ---------------------------------------------------------------- data


def fallback_synthetic(root: Path, num_videos: int, frames: int, shape: tuple[int, int], seed: int) -> list[str]:
    """Random-blob DAVIS 2017 folder, used only when stg.datasets.synthetic is not available."""
    from stg.palette import write_palette_png

    rng = np.random.default_rng(seed)
    names = [f"blobs{index:02d}" for index in range(num_videos)]
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{name}\n" for name in names))
    for name in names:
        objects = int(rng.integers(1, 4))
        fields = [cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 30) for _ in range(objects)]
        for folder in ("JPEGImages", "Annotations"):
            (root / folder / "480p" / name).mkdir(parents=True)
        for index in range(frames):
            labels = np.zeros(shape, np.uint8)
            for label, field in enumerate(fields, start=1):
                moved = np.roll(field, (index * 2, index * 3), axis=(0, 1))
                labels[moved > np.quantile(moved, 0.9)] = label
            cv2.imwrite(str(root / "JPEGImages" / "480p" / name / f"{index:05d}.jpg"), np.zeros((*shape, 3), np.uint8))
            write_palette_png(root / "Annotations" / "480p" / name / f"{index:05d}.png", labels)
    return names


def make_synthetic(root: Path, num_videos: int = 20, seed: int = 0) -> str:
    """The synthetic dataset, from the project's generator when present; returns how it was made."""
    try:
        from stg.datasets.synthetic import generate
    except ImportError:
        fallback_synthetic(root, num_videos, 40, (480, 854), seed)
        return "random blobs (benchmarks fallback)"
    generate(root, seed=seed, num_videos=num_videos)
    return "stg.datasets.synthetic.generate"


def shifted(labels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Labels moved by (dy, dx) with zeros shifted in (no wrap-around)."""
    moved = np.zeros_like(labels)
    height, width = labels.shape
    moved[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        labels[max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
    return moved


def perturb(labels: np.ndarray, index: int) -> np.ndarray:
    """A plausible imperfect result: shifted by a few pixels, every third frame eroded, object 2 dropped at times."""
    result = shifted(labels, 2 + index % 3, -3 + index % 2)
    if index % 3 == 0:
        result = cv2.erode(result, np.ones((5, 5), np.uint8))
    if index % 7 == 0:
        result[result == 2] = 0
    return result


def write_results(annotations: Path, results: Path, binary: bool) -> int:
    """Perturbed copies of every annotation as palette PNGs; returns the number written."""
    from PIL import Image

    from stg.palette import write_palette_png

    count = 0
    for sequence in sorted(path for path in annotations.iterdir() if path.is_dir()):
        (results / sequence.name).mkdir(parents=True)
        for index, path in enumerate(sorted(sequence.glob("*.png"))):
            labels = np.asarray(Image.open(path))
            if labels.ndim == 3:
                labels = labels[:, :, 0]
            labels = (labels > 127).astype(np.uint8) if binary else np.where(labels == 255, 0, labels).astype(np.uint8)
            write_palette_png(results / sequence.name / path.name, perturb(labels, index))
            count += 1
    return count


# ---------------------------------------------------------------- report


def bench(name: str, root: Path, results: Path, split: str, args: argparse.Namespace, scratch: Path) -> list[str]:
    """Rows of the table for one dataset, after checking that both evaluators agree."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from naive_davis_eval import max_difference

    runs = [run_measured("fast", root, results, split, args.processes, scratch) for _ in range(args.repeats)]
    fast_costs = [costs for costs, _ in runs]
    wall = statistics.median(costs["wall"] for costs in fast_costs)
    cpu = statistics.median(costs["cpu"] for costs in fast_costs)
    rss_self = max(costs["rss_self_mib"] for costs in fast_costs)
    rss_child = max(costs["rss_child_mib"] for costs in fast_costs)
    metrics = runs[0][1]
    frames = sum(len(values["J"]) for values in metrics["per_frame"].values())
    children = fast_costs[0]["children"]
    rows = [f"| {name} | stg (processes={args.processes}, {fast_costs[0]['inflate']}) | {wall:.2f} | {cpu:.2f} | "
            f"{rss_self:.0f}, each of {children} children <= {rss_child:.0f} | 1.0 | - |"]
    if args.naive != "none":
        naive_costs, naive_metrics = run_measured(args.naive, root, results, split, 1, scratch)
        difference = max_difference(metrics, naive_metrics)
        rows.append(f"| {name} | plain one-process ({args.naive} dilation) | {naive_costs['wall']:.2f} | "
                    f"{naive_costs['cpu']:.2f} | {naive_costs['rss_self_mib']:.0f} | "
                    f"{naive_costs['wall'] / wall:.1f}x | {difference:.1e} |")
        if difference > 1e-9:
            raise SystemExit(f"{name}: evaluators disagree by {difference}")
    print(f"{name}: {len(metrics['objects'])} objects, {frames} scored object-frames, "
          f"J&F-Mean {metrics['global']['J&F-Mean']:.6f}", file=sys.stderr)
    return rows


# ---------------------------------------------------------------- whole processes, side by side


def become_subreaper() -> bool:
    """Adopt orphaned descendants (a forkserver's workers), so that their CPU time reaches RUSAGE_CHILDREN."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def whole_process(command: list[str]) -> tuple[float, float]:
    """(wall seconds from launch to exit, CPU seconds user+sys of the process and every descendant)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO, env=env)
    wall = time.perf_counter() - start
    while True:  # descendants orphaned to this subreaper: reap them so that their times count
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def davis_sized_subset(source: Path, root: Path, videos: int) -> list[str]:
    """A DAVIS 2016 root of the `videos` longest sequences of `source` (folders symlinked; split 'train')."""
    annotations = source / "Annotations" / "480p"
    counts = {path.name: len(list(path.glob("*.png"))) for path in annotations.iterdir() if path.is_dir()}
    chosen = sorted(sorted(counts, key=lambda name: (-counts[name], name))[:videos])
    for folder in ("Annotations", "JPEGImages"):
        (root / folder / "480p").mkdir(parents=True)
        for name in chosen:
            (root / folder / "480p" / name).symlink_to(source / folder / "480p" / name, target_is_directory=True)
    (root / "ImageSets" / "480p").mkdir(parents=True)
    lines = [line for line in (source / "ImageSets" / "480p" / "train.txt").read_text().splitlines()
             if line.split()[1].split("/")[3] in chosen]
    (root / "ImageSets" / "480p" / "train.txt").write_text("".join(f"{line}\n" for line in lines))
    return chosen


def bench_whole(root: Path, results: Path, args: argparse.Namespace, scratch: Path) -> list[str]:
    """Rows of the whole-process table: `stg metrics` (median of --repeats) and the plain evaluator (once)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from naive_davis_eval import max_difference

    # an installed package has its bytecode compiled (pip does it); an editable checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would recompile stg's modules in every process (about 15 ms)
    compileall.compile_dir(str(REPO / "stg"), quiet=1)
    stg_runs = []
    for index in range(args.repeats):
        out = scratch / f"whole-stg-{index}"
        stg_runs.append(whole_process([sys.executable, "-m", "stg.cli", "metrics", "--davis-root", str(root),
                                       "--results", str(results), "--set", "train", "--out", str(out),
                                       "--processes", str(args.processes)]))
    wall = statistics.median(run[0] for run in stg_runs)
    cpu = statistics.median(run[1] for run in stg_runs)
    metrics = json.loads((scratch / "whole-stg-0" / "metrics.json").read_text())
    naive_out = scratch / "whole-naive.json"
    naive_wall, naive_cpu = whole_process([sys.executable, str(REPO / "benchmarks" / "naive_davis_eval.py"),
                                           str(root), str(results), "train", str(naive_out), args.whole_naive])
    difference = max_difference(metrics, json.loads(naive_out.read_text()))
    if difference > 1e-9:
        raise SystemExit(f"whole processes: evaluators disagree by {difference}")
    frames = sum(len(values["J"]) for values in metrics["per_frame"].values())
    return [f"| `stg metrics` CLI (processes={args.processes}, median of {args.repeats}) | {wall:.2f} | {cpu:.2f} | "
            f"1.0 | 1.0 | {frames} | - |",
            f"| plain evaluator script ({args.whole_naive} dilation) | {naive_wall:.2f} | {naive_cpu:.2f} | "
            f"{naive_wall / wall:.1f}x | {naive_cpu / cpu:.1f}x | {frames} | {difference:.1e} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the fast evaluator (median reported)")
    parser.add_argument("--naive", choices=("scipy", "cv2", "none"), default="scipy")
    parser.add_argument("--whole-naive", choices=("scipy", "cv2"), default="cv2",
                        help="dilation of the plain evaluator in the whole-process table (cv2: the toolkit's own)")
    parser.add_argument("--whole-only", action="store_true", help="only the whole-process table")
    parser.add_argument("--measure", nargs=6, metavar=("MODE", "ROOT", "RESULTS", "SPLIT", "PROCESSES", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        mode, root, results, split, processes, output = args.measure
        measure(mode, Path(root), Path(results), split, int(processes), Path(output))
        return
    sys.path.insert(0, str(REPO))
    rows = ["| dataset | evaluator | wall s | CPU s | peak RSS MiB | speed-up of stg | max abs diff |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    whole = ["| evaluator (whole process) | wall s | CPU s | wall speed-up of stg | CPU speed-up of stg | "
             "scored frames | max abs diff |", "| --- | --- | --- | --- | --- | --- | --- |"]
    subreaper = become_subreaper()
    from stg.metrics import measures

    print(f"stg's pixel counting: {'compiled kernel (stg/metrics/_kernels.c)' if measures._kernels else 'numpy'}")
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as scratch_name:
        scratch = Path(scratch_name)
        if REAL_DAVIS2016.is_dir():
            subset = scratch / "davis-sized"
            chosen = davis_sized_subset(REAL_DAVIS2016, subset, DAVIS_SIZED_VIDEOS)
            count = write_results(subset / "Annotations" / "480p", scratch / "davis-sized-results", True)
            print(f"DAVIS-sized set: {len(chosen)} longest DAVIS 2016 train videos, {count} frames; CPU of "
                  f"process trees {'complete (subreaper)' if subreaper else 'may miss orphaned workers'}",
                  file=sys.stderr)
            whole += bench_whole(subset, scratch / "davis-sized-results", args, scratch)
            print(f"Whole processes, DAVIS-sized set ({len(chosen)} videos, {count} frames):")
            print("\n".join(whole))
        else:
            print(f"skipped the whole-process table: {REAL_DAVIS2016} not found", file=sys.stderr)
        if args.whole_only:
            return
        made_by = make_synthetic(scratch / "synthetic")
        count = write_results(scratch / "synthetic" / "Annotations" / "480p", scratch / "synthetic-results", False)
        print(f"synthetic set: {made_by}, {count} frames", file=sys.stderr)
        rows += bench("synthetic 20 videos", scratch / "synthetic", scratch / "synthetic-results", "val", args, scratch)
        if REAL_DAVIS2016.is_dir():
            count = write_results(REAL_DAVIS2016 / "Annotations" / "480p", scratch / "davis2016-results", True)
            print(f"DAVIS 2016 train subset: {count} frames", file=sys.stderr)
            videos = sum(1 for path in (REAL_DAVIS2016 / "Annotations" / "480p").iterdir() if path.is_dir())
            rows += bench(f"DAVIS 2016 train ({videos} videos, {count} frames)", REAL_DAVIS2016,
                          scratch / "davis2016-results", "train", args, scratch)
        else:
            print(f"skipped DAVIS 2016: {REAL_DAVIS2016} not found", file=sys.stderr)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
