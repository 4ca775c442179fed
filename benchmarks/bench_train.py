"""Segmenter training speed: crops per second of the training loop (sampling + forward + backward + AdamW).

    python benchmarks/bench_train.py [--device cpu|cuda] [--steps 20] [--input-size 192] [--threads 2]
                                     [--encoder mobilenet_v2|timm-tf_efficientnet_lite0]

Trains on ../shared/data/davis2016-train's foldtrain split when it is there (else on a generated synthetic set),
without flow (Q = the previous mask; warping costs nothing per step, it happens at load time). Prints the
sampling rate alone and the whole step's rate, after two warm-up steps.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data" / "davis2016-train"
ENCODER_INIT = {"mobilenet_v2": "imagenet-deepsort", "timm-tf_efficientnet_lite0": "imagenet-lite0"}


def main() -> None:
    import torch

    from stg.devices import resolve_device
    from stg.train.data import load_training_split
    from stg.train.loop import Recipe, train
    from stg.train.segmenter import SegmenterSamples, SegmenterTask

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=192)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--videos", type=int, default=4, help="videos to load (loading is not timed)")
    parser.add_argument("--encoder", default="mobilenet_v2", choices=sorted(ENCODER_INIT))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as scratch:
        if SHARED.is_dir():
            root, layout, split = SHARED, "davis2016", "foldtrain"
        else:
            from stg.datasets.synthetic import generate

            root, layout, split = Path(scratch) / "synthetic", "davis2017", "val"
            generate(root, seed=0, num_videos=args.videos, frames=(20, 30), height=480, width=854, split=split)
        videos = load_training_split(root, layout, split)[: args.videos]
        task = SegmenterTask(videos, SegmenterSamples(input_size=args.input_size), encoder=args.encoder,
                             encoder_init=ENCODER_INIT[args.encoder])
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for step in range(5):
            task.batch(step, args.batch_size, rng)
        sampling = 5 * args.batch_size / (time.perf_counter() - start)
        recipe = Recipe(steps=args.steps + 2, batch_size=args.batch_size, lr=3e-4, warmup_steps=0,
                        checkpoint_every=10**6, checkpoint_seconds=1e9)
        train(task, recipe, Path(scratch) / "warm", device=device, stop_after=2, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train(task, recipe, Path(scratch) / "warm", device=device, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    print(f"data: {root} ({split}, {len(videos)} videos); device {device}; torch threads {torch.get_num_threads()}")
    print(f"sampling only: {sampling:.1f} crops/s")
    print(f"training {args.encoder}: {args.steps * args.batch_size / seconds:.2f} crops/s at "
          f"{args.input_size}x{args.input_size}, batch {args.batch_size} ({seconds / args.steps:.2f} s/step)")


if __name__ == "__main__":
    main()
