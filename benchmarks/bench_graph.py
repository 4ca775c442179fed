"""Graph stage throughput (frames/s) and peak memory against video length and temporal memory policy.

Synthetic videos of T frames (the demo generator), real DIS flow and warp stores, and proposals made from
the ground truth (true, eroded and dilated masks per object plus a distractor), so the numbers measure
the graph stage alone. Each configuration runs in a fresh process: its peak RSS is its own.

    python benchmarks/bench_graph.py                       # T = 25 50 100 200, memory all vs window, CPU
    python benchmarks/bench_graph.py --lengths 25 50 --device cuda --height 480 --width 854
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def make_inputs(root: Path, frames: int, height: int, width: int) -> dict[str, str]:
    """Dataset, flow, warp and a ground-truth-derived segment store for one synthetic video of `frames` frames."""
    from stg.cli import main
    from stg.datasets import open_dataset, read_annotation, read_first_mask
    from stg.datasets.synthetic import generate
    from stg.graph.boxes import mask_box
    from stg.store import build_store

    data = root / "data"
    generate(data, seed=1, num_videos=1, frames=(frames, frames), height=height, width=width, split="val")
    video = open_dataset(data, "davis2017", "val").videos()[0]
    common = ["--dataset-root", str(data), "--split", "val", "--video", video.name]
    assert main(["flow", *common, "--settings", '{"backend": "dis", "dis": {"preset": "fast"}}',
                 "--out", str(root / "flow.zarr")]) == 0
    assert main(["warp", *common, "--flow", str(root / "flow.zarr"), "--out", str(root / "warp.zarr")]) == 0
    num_objects = read_first_mask(video)[1]
    kernel = np.ones((5, 5), np.uint8)
    boxes, scores, masks = [], [], []
    for name in video.frame_names:
        labels = read_annotation(video.annotation_paths[name], "davis2017", shape=(height, width))
        rows = []
        for obj in range(1, num_objects + 1):
            truth = (labels == obj).astype(np.uint8)
            for variant in (truth, cv2.erode(truth, kernel), cv2.dilate(truth, kernel)):
                if variant.any():
                    rows.append((mask_box(variant.astype(bool)), 0.9, variant * 255))
        distractor = np.zeros((height, width), np.uint8)
        distractor[:8, :8] = 255
        rows.append((np.array([0, 0, 8, 8], np.float32), 0.5, distractor))
        boxes.append(np.stack([r[0] for r in rows]).astype(np.float32))
        scores.append(np.array([r[1] for r in rows], np.float32))
        masks.append(np.stack([r[2] for r in rows]))
    attrs = {"frame_names": video.frame_names, "image_size": [height, width], "video": video.name, "key": "bench"}
    with build_store(root / "segment.zarr", "segment", attrs) as store:
        store.ragged("boxes", boxes, np.float32)
        store.ragged("scores", scores, np.float32)
        store.ragged("masks", masks, np.uint8, chunk_rows=1)
    return {"data": str(data), "video": video.name, "objects": num_objects}


def run_one(root: str, video: str, settings: dict, device: str, threads: int, queue) -> None:
    """Child process: one graph run; reports wall seconds, frames/s and peak RSS."""
    import torch

    torch.set_num_threads(threads)

    from stg.datasets import open_dataset
    from stg.features.backends import make_features_backend
    from stg.graph.stage import compute_graph_store
    from stg.store import open_store

    torch.manual_seed(0)
    base = Path(root)
    features = make_features_backend(settings, device)
    target = open_dataset(base / "data", "davis2017", "val").video(video)
    if features.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    summary = compute_graph_store(target, open_store(base / "segment.zarr"), open_store(base / "warp.zarr"),
                                  open_store(base / "flow.zarr"), features, settings,
                                  base / f"graph-{time.time_ns()}.zarr")
    seconds = time.perf_counter() - started
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if features.device.type == "cuda" else None
    queue.put({"seconds": seconds, "fps": summary["frames"] / seconds, "device": str(features.device),
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "peak_gpu_mb": gpu_mb})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=428)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the workflow's job uses 1)")
    parser.add_argument("--window", type=int, default=10, help="memory_window of the first_and_window policy")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    import yaml

    from stg.config import DEFAULT_CONFIG_PATH

    shipped = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())["stages"]["graph"]
    shipped = {k: v for k, v in shipped.items() if k not in ("device", "passes")}
    context = multiprocessing.get_context("spawn")
    rows = []
    print(f"graph stage, {args.height}x{args.width}, features {shipped['backend']}, device {args.device}, "
          f"{args.threads} torch thread(s)")
    print(f"{'frames':>6} {'memory':>18} {'objects':>7} {'seconds':>8} {'frames/s':>8} {'peak RSS MB':>11} "
          f"{'peak GPU MB':>11}")
    with tempfile.TemporaryDirectory() as scratch:
        for length in args.lengths:
            root = Path(scratch) / f"t{length}"
            inputs = make_inputs(root, length, args.height, args.width)
            for memory in ("all", "first_and_window"):
                settings = {**shipped, "memory": memory, "memory_window": args.window}
                queue = context.Queue()
                child = context.Process(target=run_one, args=(str(root), inputs["video"], settings, args.device,
                                                                          args.threads, queue))
                child.start()
                result = queue.get()
                child.join()
                label = memory if memory == "all" else f"first+window {args.window}"
                row = {"frames": length, "memory": label, "objects": inputs["objects"], **result}
                rows.append(row)
                gpu = f"{result['peak_gpu_mb']:.0f}" if result["peak_gpu_mb"] is not None else "-"
                print(f"{length:>6} {label:>18} {inputs['objects']:>7} {result['seconds']:>8.1f} "
                      f"{result['fps']:>8.2f} {result['peak_rss_mb']:>11.0f} {gpu:>11}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
