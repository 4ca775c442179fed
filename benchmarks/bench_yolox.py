"""Box recall@0.5 and speed of the yolox detect backend alone on DAVIS 2016 frames.

Usage (from the repository root):
    python benchmarks/bench_yolox.py [--root ../shared/data/davis2016-train] [--split foldcheck] [--step 6]
                                     [--device cpu] [--settings '{"score_thresh": 0.05}']

For every `step`-th frame (0, step, 2*step, ...) of each video of the split, the frame counts as
found when some YOLOX box has IoU >= 0.5 with the box of the ground-truth mask (DAVIS 2016: one
object per video; frames with an empty mask are skipped). Prints recall and proposals per frame,
per video and pooled, and frames/s of `detect_frame` (letterbox, ONNX Runtime, decoding, NMS; not
JPEG decoding) after one warm-up frame, with ONNX Runtime's default threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "davis2016-train"


def main() -> None:
    from stg.datasets import open_dataset, read_annotation, read_frame
    from stg.detect.yolox import YoloxDetect
    from stg.proposals_report import IOU_THRESHOLD, box_iou, mask_box

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--split", default="foldcheck")
    parser.add_argument("--step", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--settings", default="{}", help="JSON of YoloxDetect settings")
    args = parser.parse_args()
    if not args.root.is_dir():
        print(f"skipped: DAVIS 2016 sequences not found at {args.root} (only present in this project's CI)")
        return

    backend = YoloxDetect(device=args.device, **json.loads(args.settings))
    dataset = open_dataset(args.root, "davis2016", args.split)
    print(f"yolox on DAVIS 2016 {args.split}, every {args.step}th frame; {json.dumps(backend.identity())}")
    print(f"{'video':<18} {'frames':>6} {'props/frame':>11} {'recall@0.5':>10}")
    warmed, seconds, found, counted, proposals = False, 0.0, 0, 0, 0
    for video in dataset.videos():
        v_found = v_counted = v_props = 0
        for index in range(0, len(video.frame_names), args.step):
            name = video.frame_names[index]
            if name not in video.annotation_paths:
                continue
            truth = mask_box(read_annotation(video.annotation_paths[name], "davis2016") == 1)
            if truth is None:
                continue
            image = read_frame(video.frame_paths[index])
            if not warmed:
                backend.detect_frame(image)
                warmed = True
            start = time.perf_counter()
            detections = backend.detect_frame(image)
            seconds += time.perf_counter() - start
            hit = len(detections) > 0 and box_iou(detections.boxes, truth[None]).max() >= IOU_THRESHOLD
            v_found, v_counted, v_props = v_found + int(hit), v_counted + 1, v_props + len(detections)
        print(f"{video.name:<18} {v_counted:>6} {v_props / max(v_counted, 1):>11.2f} "
              f"{v_found / max(v_counted, 1):>10.3f}")
        found, counted, proposals = found + v_found, counted + v_counted, proposals + v_props
    print(f"{'pooled':<18} {counted:>6} {proposals / max(counted, 1):>11.2f} {found / max(counted, 1):>10.3f}")
    print(f"speed: {counted / seconds:.1f} frames/s ({1000 * seconds / counted:.1f} ms/frame) on "
          f"{backend.identity()['providers'][0]}, frames {image.shape[1]}x{image.shape[0]}")


if __name__ == "__main__":
    main()
