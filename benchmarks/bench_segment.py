"""Proposals per second of each segment backend at 480p (854x480), on CPU and, when there is one, on CUDA.

Usage (from the repository root):
    python benchmarks/bench_segment.py [--frames 3] [--per-frame 10] [--configs grabcut,grabcut-full,deeplab-shipped,
                                        deeplab-mnv2,deeplab-lite0,deeplab-r101] [--devices cpu,cuda] [--batch-size 8]
                                        [--input-size 512]

Frames and masks come from the synthetic generator (one 854x480 video). Every frame gets
`--per-frame` boxes: each object's ground-truth box plus jittered copies (what the motion detector
gives); Q is the union of the one-hot ground-truth masks, as the warp stage writes it.
`deeplab-shipped` is the default segment backend as configured (the shipped checkpoint, its input size
192); the other DeepLabv3+ configurations run with random weights at --input-size (speed does not depend
on the weights' values), built through the backend's own code. Timed: backend.segment over the frames
after one warm-up frame; frames/s = proposals/s / per-frame.
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

CONFIGS = {
    "grabcut": ("grabcut", {}),  # defaults: max_side 256, core_erosion 0.05
    "grabcut-full": ("grabcut", {"max_side": None}),
    "deeplab-shipped": ("deeplab", {"encoder": "mobilenet_v2", "weights": None, "input_size": None}),
    "deeplab-mnv2": ("deeplab", {"encoder": "mobilenet_v2"}),
    "deeplab-lite0": ("deeplab", {"encoder": "timm-tf_efficientnet_lite0"}),
    "deeplab-r101": ("deeplab", {"encoder": "resnet101"}),
}


def make_frames(root: Path, frames: int, per_frame: int, seed: int = 0) -> list[tuple[np.ndarray, ...]]:
    """[(image, boxes, union prior)] of a synthetic 854x480 video."""
    from stg.datasets import open_dataset, read_annotation, read_frame
    from stg.datasets.synthetic import generate
    from stg.proposals_report import mask_box

    generate(root, seed=1, num_videos=1, frames=(max(frames, 6), max(frames, 6)), height=480, width=854, split="val")
    video = open_dataset(root, "davis2017", "val").videos()[0]
    rng = np.random.default_rng(seed)
    out = []
    for index in range(frames):
        labels = read_annotation(video.annotation_paths[video.frame_names[index]], "davis2017")
        objects = [mask_box(labels == k) for k in range(1, int(labels.max()) + 1)]
        objects = [b for b in objects if b is not None]
        boxes = [objects[n % len(objects)] for n in range(per_frame)]
        boxes = [b if n < len(objects) else b + rng.normal(0, 0.08, 4) * np.tile(b[2:] - b[:2], 2)
                 for n, b in enumerate(boxes)]
        prior = ((labels > 0) & (labels < 255)).astype(np.float32)
        out.append((read_frame(video.frame_paths[index]), np.array(boxes, np.float32), prior))
    return out


def random_checkpoint(encoder: str) -> str:
    """A randomly initialised checkpoint: speed does not depend on the weights' values."""
    import torch

    from stg.segment.deeplab import build_deeplab

    path = Path(tempfile.mkdtemp(prefix="stg-bench-")) / f"random-{encoder}.pt"
    torch.save(build_deeplab(encoder).state_dict(), path)
    return str(path)


def time_config(name: str, device: str, warm: tuple, frames: list, batch_size: int, input_size: int) -> dict:
    from stg.segment.backends import make_segment_backend
    from stg.segment.deeplab import DeepLabSegmenter

    backend_name, options = CONFIGS[name]
    start = time.perf_counter()
    if backend_name == "deeplab" and "weights" in options:  # the shipped checkpoint at the configured input size
        from stg.settings import stage_settings

        defaults = stage_settings("segment", {})["deeplab"]
        backend = DeepLabSegmenter(device=device, batch_size=batch_size, encoder=options["encoder"],
                                   input_size=defaults["input_size"], margin=defaults["margin"])
    elif backend_name == "deeplab":
        backend = DeepLabSegmenter(device=device, batch_size=batch_size, input_size=input_size,
                                   weights=random_checkpoint(options["encoder"]), **options)
    else:
        backend = make_segment_backend({"backend": backend_name, backend_name: options})
    build = time.perf_counter() - start

    def run(frame):
        image, boxes, prior = frame
        return backend.segment(image, boxes, prior[None], np.zeros(len(boxes), np.int64))

    run(warm)  # warm-up (cuDNN autotuning, allocator, OpenCV threads)
    sync = _synchroniser(device)
    sync()
    start = time.perf_counter()
    proposals = 0
    for frame in frames:
        run(frame)
        proposals += len(frame[1])
    sync()
    seconds = time.perf_counter() - start
    return {"build_s": build, "seconds": seconds, "proposals": proposals,
            "proposals_per_s": proposals / seconds, "frames_per_s": len(frames) / seconds}


def _synchroniser(device: str):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.synchronize
    return lambda: None


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3, help="timed frames per configuration")
    parser.add_argument("--per-frame", type=int, default=10, help="proposals per frame")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=512)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        frames = make_frames(Path(tmp) / "data", args.frames + 1, args.per_frame)
    warm, timed = frames[0], frames[1:]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    print(f"854x480, {args.per_frame} proposals per frame, {len(timed)} timed frames, DeepLab input "
          f"{args.input_size}x{args.input_size}, batch {args.batch_size}")
    print(f"{'config':<14} {'device':<6} {'build s':>8} {'proposals/s':>12} {'frames/s':>9}")
    for name in args.configs.split(","):
        for device in args.devices.split(","):
            if CONFIGS[name][0] == "grabcut" and device != "cpu":
                continue  # OpenCV GrabCut runs on the CPU only
            figures = time_config(name, device, warm, timed, args.batch_size, args.input_size)
            print(f"{name:<14} {device:<6} {figures['build_s']:>8.2f} {figures['proposals_per_s']:>12.2f} "
                  f"{figures['frames_per_s']:>9.3f}", flush=True)


if __name__ == "__main__":
    main()
