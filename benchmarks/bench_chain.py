"""Seconds per frame of every stage of a whole pipeline run, cold cache: the speed a user waits for.

Runs the real workflow (Snakemake, the repository's Snakefile and config) on a DAVIS-layout dataset in a fresh
working folder, so every store is computed: flow, warp, detect, online learning, graph (or segment), metrics.
Prints, per stage, its jobs' wall seconds per frame (Snakemake's benchmark files), and for the whole run the
elapsed time per frame and frames per second, with the J&F it scored. The default is the default
variant on the check fold's 8 held-out videos of ../shared/data/davis2016-train (480p).

    python benchmarks/bench_chain.py [--variant baseline-ol] [--split foldcheck] [--cores 2] [--keep DIR]

With a CUDA device the torch stages run there (device auto) and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "davis2016-train"
STAGE_ORDER = ("synth", "flow", "warp", "detect", "segment", "online", "graph", "propagate", "results")


def frames_of(run: Path) -> int:
    """Frames the run's videos hold (its per-frame CSV lists scored frames only, so count the masks written)."""
    return sum(1 for _ in (run / "Annotations").rglob("*.png"))


def stage_table(timing: dict[str, dict[str, float]], frames: int) -> list[str]:
    """Job wall seconds per frame of each stage (Snakemake's benchmark files; its sampled cpu_time misses most of a
    short job, so it is not shown). Jobs of one stage may run side by side: their sum exceeds elapsed time."""
    rows = ["| stage | jobs | job wall s | job wall s/frame |", "| --- | --- | --- | --- |"]
    ordered = sorted(timing, key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER))
    for stage in ordered:
        values = timing[stage]
        rows.append(f"| {stage} | {values['jobs']} | {values['wall_s']:.1f} | {values['wall_s'] / frames:.3f} |")
    total = sum(v["wall_s"] for v in timing.values())
    rows.append(f"| all jobs | {sum(v['jobs'] for v in timing.values())} | {total:.1f} | {total / frames:.3f} |")
    return rows


def torch_device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu (no torch)"
    return f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="a DAVIS 2016-layout dataset")
    parser.add_argument("--layout", default="davis2016")
    parser.add_argument("--split", default="foldcheck")
    parser.add_argument("--variant", default=None, help="a variant of config/config.yaml (default: its default)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", type=Path, action="append", default=[],
                        help="more config layered on config/config.yaml (e.g. a device setting)")
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it")
    args = parser.parse_args()
    if not args.root.is_dir():
        raise SystemExit(f"{args.root}: no dataset there (give --root)")
    root = args.root.resolve()

    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench-chain-"))
    if args.keep and work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work}: not empty; the benchmark needs a cold cache")
    work.mkdir(parents=True, exist_ok=True)
    try:
        (work / "config").mkdir()
        shutil.copy(REPO / "config" / "config.yaml", work / "config" / "config.yaml")
        bench_config = work / "bench.yaml"
        bench_config.write_text(yaml.safe_dump({"datasets": {"bench": {
            "layout": args.layout, "root": str(root), "resolution": "480p", "splits": [args.split]}}}))
        suffix = f"__{args.variant}" if args.variant else ""
        target = f"results/bench_{args.split}{suffix}"
        command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
                   "--cores", str(args.cores), "--configfile", str(bench_config),
                   *map(str, (path.resolve() for path in args.configfile)), "--", target]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if completed.returncode:
            raise SystemExit(f"snakemake failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
        run = work / target
        info = json.loads((run / "run.json").read_text())
        frames = frames_of(run)
        print(f"run {info['run']} ({info.get('description', '')}): {len(info['videos'])} videos, {frames} frames "
              f"at {root.name}/{args.split}, {args.cores} cores, torch device {torch_device()}")
        print("\n".join(stage_table(info["timing"], frames)))
        print(f"whole run, cold cache: {elapsed:.1f} s elapsed = {elapsed / frames:.3f} s/frame = "
              f"{frames / elapsed:.2f} frames/s")
        scores = info.get("global") or {}
        if scores:
            print(f"J&F {scores['J&F-Mean']:.4f} (J {scores['J-Mean']:.4f}, F {scores['F-Mean']:.4f})")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
