"""Seconds per frame of the flow, warp and propagate stages, and bytes per frame of their stores.

Runs the stages the way the pipeline does (same functions, same stores) on the synthetic demo
(default 4 videos at 480x854) and, when present, on ../shared/data/davis2016-train.

    python benchmarks/bench_stages.py [--videos N] [--davis16 PATH] [--preset medium]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from stg.datasets import open_dataset, read_first_mask
from stg.datasets.synthetic import generate
from stg.flow.backends import make_flow_backend
from stg.flow.stage import compute_flow_store
from stg.store import open_store
from stg.warp.stage import FirstFrameSource, compute_propagate_store, compute_warp_store

DEFAULT_DAVIS16 = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-train"


def store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bench_dataset(name: str, root: Path, layout: str, split: str, work: Path, settings: dict) -> dict[str, float]:
    dataset = open_dataset(root, layout, split)
    totals = {"frames": 0, "flow_s": 0.0, "warp_s": 0.0, "propagate_s": 0.0,
              "flow_bytes": 0, "warp_bytes": 0, "labels_bytes": 0}
    backend = make_flow_backend(settings["flow"])
    for video in dataset.videos():
        flow_path, warp_path, labels_path = (work / f"{name}-{video.name}-{s}.zarr" for s in ("flow", "warp", "labels"))
        start = time.perf_counter()
        compute_flow_store(video, backend, flow_path, settings["flow"])
        totals["flow_s"] += time.perf_counter() - start
        labels, num_objects = read_first_mask(video)
        start = time.perf_counter()
        compute_warp_store(labels, num_objects, open_store(flow_path, "flow"), FirstFrameSource(), warp_path,
                           settings["warp"], video=video.name)
        totals["warp_s"] += time.perf_counter() - start
        start = time.perf_counter()
        compute_propagate_store(open_store(warp_path, "warp"), labels_path, {"threshold": 0.5})
        totals["propagate_s"] += time.perf_counter() - start
        totals["frames"] += len(video.frame_paths)
        for stage, path in (("flow", flow_path), ("warp", warp_path), ("labels", labels_path)):
            totals[f"{stage}_bytes"] += store_bytes(path)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4, help="synthetic videos")
    parser.add_argument("--davis16", type=Path, default=DEFAULT_DAVIS16)
    parser.add_argument("--preset", default="medium", help="DIS preset")
    args = parser.parse_args()
    settings = {"flow": {"backend": "dis", "dis": {"preset": args.preset}},
                "warp": {"occlusion_check": True, "fb_alpha": 0.01, "fb_beta": 0.5, "occluded_weight": 0.5}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = []
        generate(work / "demo", seed=0, num_videos=args.videos)
        rows.append(("demo (synthetic, 854x480)", bench_dataset("demo", work / "demo", "davis2017", "val", work,
                                                               settings)))
        if args.davis16.is_dir():
            rows.append(("davis2016-train (13 videos)", bench_dataset("d16", args.davis16, "davis2016", "train",
                                                                      work, settings)))
        else:
            print(f"skipping DAVIS 2016: {args.davis16} not found")
    print(f"\nDIS preset {args.preset}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"{'dataset':30s} {'frames':>6s} {'flow s/f':>9s} {'warp s/f':>9s} {'prop s/f':>9s} "
          f"{'flow B/f':>10s} {'warp B/f':>10s} {'labels B/f':>10s}")
    for name, t in rows:
        n = t["frames"]
        print(f"{name:30s} {n:6d} {t['flow_s'] / n:9.4f} {t['warp_s'] / n:9.4f} {t['propagate_s'] / n:9.4f} "
              f"{t['flow_bytes'] / n:10.0f} {t['warp_bytes'] / n:10.0f} {t['labels_bytes'] / n:10.0f}")


if __name__ == "__main__":
    main()
