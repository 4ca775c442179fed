"""How well the motion model (Eq. 2) predicts the next ground-truth box, against the previous box itself.

Usage (from the repository root):
    python benchmarks/motion_model_probe.py [--root ../shared/data/davis2016-train] [--split foldtrain]

For every frame t >= 1 of every video of the split, p_t is predicted from the ground-truth boxes of frames
0..t-1 (stg.graph.motion.predict_box, the tracker's own function) and compared with the ground-truth box of
frame t by IoU. Rows: the previous box (the baseline's stand-in for p) and Eq. 2 with n velocity steps
(their mean, as the paper, or median) and a size history size_n. A second table repeats it with wrong
selections in the history (seeded): each history box, with probability 0.05, moved sideways by half its width,
as when the chosen mask spills onto a neighbour. It reads only annotations: the graph's defaults (n, size_n,
velocity) were chosen on foldtrain's tables, never on foldcheck's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stg.datasets import open_dataset, read_annotation
from stg.graph.boxes import box_iou_matrix
from stg.graph.motion import predict_box

REPO = Path(__file__).resolve().parents[1]
# (n, size_n, velocity); None: the previous box
SETTINGS = [(None, None, None), (10, 10, "mean"), (10, 1, "mean"), (5, 1, "mean"), (3, 3, "mean"), (3, 1, "mean"),
            (1, 1, "mean"), (10, 1, "median"), (5, 1, "median"), (5, 5, "median"), (3, 1, "median")]
WRONG_SELECTION_RATE = 0.05


def ground_truth_boxes(video) -> list[np.ndarray | None]:
    """(x0, y0, x1, y1) of the object in every annotated frame (DAVIS 2016: one object), None when absent."""
    boxes: list[np.ndarray | None] = []
    for name in video.frame_names:
        labels = read_annotation(video.annotation_paths[name], video.layout)
        rows, columns = np.nonzero(labels)
        boxes.append(None if len(rows) == 0 else
                     np.array([columns.min(), rows.min(), columns.max() + 1, rows.max() + 1], np.float64))
    return boxes


def with_wrong_selections(boxes: list[np.ndarray | None], rng: np.random.Generator) -> list[np.ndarray | None]:
    """The boxes with some moved sideways by half their width (a selection that spilled onto a neighbour)."""
    moved = []
    for box in boxes:
        if box is not None and rng.random() < WRONG_SELECTION_RATE:
            half = (box[2] - box[0]) / 2
            box = box + np.array([half, 0, half, 0])
        moved.append(box)
    return moved


def prediction_ious(boxes: list[np.ndarray | None], history_boxes: list[np.ndarray | None], n: int | None,
                    size_n: int | None, velocity: str | None) -> list[float]:
    ious = []
    for t in range(1, len(boxes)):
        history = [box for box in history_boxes[:t] if box is not None]
        if boxes[t] is None or not history:
            continue
        predicted = history[-1] if n is None else predict_box(history, n, size_n, velocity)
        ious.append(float(box_iou_matrix(predicted[None], boxes[t][None])[0, 0]))
    return ious


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "davis2016-train")
    parser.add_argument("--split", default="foldtrain")
    args = parser.parse_args()
    dataset = open_dataset(args.root, "davis2016", args.split, "480p")
    videos = [ground_truth_boxes(dataset.video(name)) for name in dataset.video_names()]
    print(f"{args.split}: {len(videos)} videos, {sum(len(v) - 1 for v in videos)} predictions")
    rng = np.random.default_rng(0)
    histories = {"ground-truth history": videos,
                 f"history with wrong selections ({WRONG_SELECTION_RATE:.0%})": [with_wrong_selections(boxes, rng)
                                                                                 for boxes in videos]}
    for title, history_boxes in histories.items():
        print(f"\n{title}:")
        print("| p_t | mean IoU with the next GT box | IoU < 0.3 (below join_iou) | IoU < 0.5 | worst video mean |")
        print("| --- | --- | --- | --- | --- |")
        for n, size_n, velocity in SETTINGS:
            per_video = [prediction_ious(boxes, history, n, size_n, velocity)
                         for boxes, history in zip(videos, history_boxes, strict=True)]
            ious = np.concatenate([np.asarray(v) for v in per_video])
            name = ("previous box (motion off)" if n is None
                    else f"Eq. 2, {velocity} of n = {n} steps, size_n = {size_n}")
            print(f"| {name} | {ious.mean():.3f} | {np.mean(ious < 0.3):.3f} | {np.mean(ious < 0.5):.3f} | "
                  f"{min(np.mean(v) for v in per_video if v):.3f} |")


if __name__ == "__main__":
    main()
