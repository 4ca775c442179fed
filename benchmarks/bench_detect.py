"""Frames per second of each detect backend at 480p (854x480), on CPU and, when there is one, on CUDA.

Usage (from the repository root):
    python benchmarks/bench_detect.py [--frames 6] [--motion-frames 60] [--yolox-frames 30]
                                      [--backends motion,torchvision,mmdet,yolox,union] [--devices cpu,cuda]
                                      [--batch-size 2]

Frames and first-frame masks come from the synthetic generator (one 854x480 video); the motion
backend reads one-hot priors made from the ground-truth masks (what the warp stage writes), a
union (yolox + motion) reads both. yolox runs the shipped YOLOX-Nano on ONNX Runtime (CUDA only
with onnxruntime-gpu's CUDA provider; otherwise that row says it was skipped). The
R-CNN backends use random weights, saved to a temporary checkpoint and loaded through the
backend's own loading code: speed does not depend on the weights' values, but random weights
pass many boxes, so the mask head runs on close to `max_detections` boxes per frame (a worst
case). Timed: backend.detect over the frames after one warm-up batch; model construction and
checkpoint loading are reported separately.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_video(root: Path, frames: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(T, 480, 854, 3) RGB frames and (T, K, 480, 854) float32 one-hot priors of a synthetic video."""
    from stg.datasets import open_dataset, read_annotation, read_frame
    from stg.datasets.synthetic import generate
    from stg.warp.ops import one_hot

    generate(root, seed=1, num_videos=1, frames=(frames, frames), height=480, width=854, split="val")
    video = open_dataset(root, "davis2017", "val").videos()[0]
    images = np.stack([read_frame(p) for p in video.frame_paths])
    labels = [read_annotation(video.annotation_paths[n], "davis2017") for n in video.frame_names]
    count = int(max(label.max() for label in labels))
    priors = np.stack([one_hot(label, count) for label in labels]).astype(np.float32)
    return images, priors, video.name


def time_backend(settings: dict, images: np.ndarray, priors: np.ndarray, video: str, frames: int) -> dict:
    from stg.detect.backends import make_detect_backend
    from stg.detect.base import FRAMES, FRAMES_AND_PRIORS, PRIORS, DetectBatch

    start = time.perf_counter()
    backend = make_detect_backend(settings)
    build = time.perf_counter() - start

    def batch(indices: list[int]) -> DetectBatch:
        reads_frames = backend.reads in (FRAMES, FRAMES_AND_PRIORS)
        reads_priors = backend.reads in (PRIORS, FRAMES_AND_PRIORS)
        return DetectBatch(video, indices, images=images[indices] if reads_frames else None,
                           priors=priors[indices] if reads_priors else None)

    backend.detect(batch(list(range(min(backend.batch_size, len(images))))))  # warm-up
    count = 0
    start = time.perf_counter()
    for first in range(0, frames, backend.batch_size):
        indices = [i % len(images) for i in range(first, min(first + backend.batch_size, frames))]
        count += sum(len(d) for d in backend.detect(batch(indices)))
    seconds = time.perf_counter() - start
    return {"build_s": build, "s_per_frame": seconds / frames, "fps": frames / seconds, "dets": count / frames,
            "batch": backend.batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=6, help="timed frames for the R-CNN backends")
    parser.add_argument("--motion-frames", type=int, default=60, help="timed frames for the motion backend")
    parser.add_argument("--yolox-frames", type=int, default=30, help="timed frames for yolox and union")
    parser.add_argument("--backends", default="motion,torchvision,mmdet,yolox,union")
    parser.add_argument("--devices", default="", help="default: cpu, plus cuda when available")
    parser.add_argument("--batch-size", type=int, default=2)
    args = parser.parse_args()

    import torch

    from stg.detect.rcnn import build_model

    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    backends = args.backends.split(",")
    rows: list[tuple[str, str, str, dict | str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images, priors, video = make_video(tmp / "data", max(args.frames, 8))
        print(f"video: {images.shape[0]} frames {images.shape[2]}x{images.shape[1]}, {priors.shape[1]} object(s); "
              f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads", flush=True)
        if "motion" in backends:
            settings = {"backend": "motion", "motion": {"min_area": 16, "jitter_copies": 4, "jitter_scale": 0.1,
                                                        "jitter_shift": 0.1, "seed": 0, "batch_size": 8}}
            rows.append(("motion", "4 jitter copies", "cpu", time_backend(settings, images, priors, video,
                                                                           args.motion_frames)))
        if "torchvision" in backends:
            torch.manual_seed(0)
            weights = tmp / "maskrcnn_random.pth"
            torch.save(build_model().state_dict(), weights)
            variants = {"paper: short side 800, 1000 RPN, 100 dets": {},
                        "native 480p: short side 480": {"min_size": 480, "max_size": 854}}
            for device in devices:
                for label, extra in variants.items():
                    settings = {"backend": "torchvision", "device": device,
                                "torchvision": {"weights": str(weights), "batch_size": args.batch_size, **extra}}
                    rows.append(("torchvision", label, device, time_backend(settings, images, priors, video,
                                                                            args.frames)))
                    print(rows[-1], flush=True)
        if "mmdet" in backends:
            rows.extend(bench_mmdet(tmp, devices, images, priors, video, args))
        rows.extend(bench_yolox(devices, backends, images, priors, video, args))
    print()
    print(f"{'backend':<12} {'setting':<42} {'device':<6} {'batch':>5} {'s/frame':>8} {'fps':>8} "
          f"{'dets/frame':>10} {'build s':>8}")
    for backend, label, device, result in rows:
        if isinstance(result, str):
            print(f"{backend:<12} {label:<42} {device:<6} {result}")
            continue
        print(f"{backend:<12} {label:<42} {device:<6} {result['batch']:>5} {result['s_per_frame']:>8.3f} "
              f"{result['fps']:>8.2f} {result['dets']:>10.1f} {result['build_s']:>8.1f}")


def bench_yolox(devices: list[str], backends: list[str], images: np.ndarray, priors: np.ndarray, video: str,
                args: argparse.Namespace) -> list[tuple[str, str, str, dict | str]]:
    """The shipped YOLOX-Nano alone and in the default union with motion, on every device ONNX Runtime can use."""
    import onnxruntime

    motion = {"min_area": 16, "jitter_copies": 4, "jitter_scale": 0.1, "jitter_shift": 0.1, "seed": 0}
    runs = {"yolox": ("YOLOX-Nano 416, ONNX Runtime", {"backend": "yolox"}),
            "union": ("yolox + motion (4 jitter copies)", {"backend": "union", "motion": motion,
                                                            "union": {"backends": ["yolox", "motion"]}})}
    rows: list[tuple[str, str, str, dict | str]] = []
    for name, (label, settings) in runs.items():
        if name not in backends:
            continue
        for device in devices:
            if device.startswith("cuda") and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                rows.append((name, label, device, f"skipped: onnxruntime {onnxruntime.__version__} has no "
                             "CUDAExecutionProvider (onnxruntime-gpu)"))
                continue
            rows.append((name, label, device, time_backend({**settings, "device": device}, images, priors, video,
                                                           args.yolox_frames)))
            print(rows[-1], flush=True)
    return rows


def bench_mmdet(tmp: Path, devices: list[str], images: np.ndarray, priors: np.ndarray, video: str,
                args: argparse.Namespace) -> list[tuple[str, str, str, dict | str]]:
    try:
        import mmdet
        from mmdet.apis import init_detector
    except ImportError:
        return [("mmdet", "mask-rcnn_r50_fpn", "-", "skipped: mmdet not installed (.ci/install_mmdet.sh)")]
    import torch

    base = Path(mmdet.__file__).parent / ".mim" / "configs" / "mask_rcnn" / "mask-rcnn_r50_fpn_1x_coco.py"
    # One foreground class as in the paper: random weights then score ~0.5 and the mask head runs (with
    # COCO's 80 classes every random score is ~1/81, below 0.05, and nothing would be timed past the box head).
    config = tmp / "mask-rcnn_r50_fpn_1class.py"
    config.write_text(f"_base_ = {str(base)!r}\n"
                      "model = dict(roi_head=dict(bbox_head=dict(num_classes=1), mask_head=dict(num_classes=1)))\n")
    torch.manual_seed(0)
    weights = tmp / "mmdet_maskrcnn_random.pth"
    with warnings.catch_warnings(record=True):  # "checkpoint is None": expected here
        model = init_detector(str(config), None, device="cpu")
    torch.save({"state_dict": model.state_dict()}, weights)
    rows = []
    for device in devices:
        settings = {"backend": "mmdet", "device": device,
                    "mmdet": {"config": str(config), "weights": str(weights), "batch_size": args.batch_size}}
        rows.append(("mmdet", "mask-rcnn_r50_fpn, 1 class, 1333x800", device,
                     time_backend(settings, images, priors, video, args.frames)))
        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    main()
