"""How well the motion model (Eq. 2) predicts the next ground-truth box, against the previous box itself.

Usage (from the repository root):
    python benchmarks/motion_model_probe.py [--root ../shared/data/davis2016-train] [--split foldtrain]
        [--flow cache/davis16tr/flow/<key>]

For every frame t >= 1 of every video of the split, p_t is predicted from the ground-truth boxes of frames
0..t-1 (stg.graph.motion.predict_box, the tracker's own function) and compared with the ground-truth box of
frame t by IoU. Rows: the previous box (the baseline's stand-in for p) and Eq. 2 with n velocity steps
(their mean, as the paper, or median) and a size history size_n. A second table repeats it with wrong
selections in the history (seeded): each history box, with probability 0.05, moved sideways by half its width,
as when the chosen mask spills onto a neighbour. It reads only annotations: the graph's defaults (n, size_n,
velocity, source) were chosen on foldtrain's tables, never on foldcheck's. With --flow (a folder of the flow
stage's <video>.zarr stores) a last row gives `motion_source: flow`: B(Q_t), the ground-truth mask of frame t-1
warped by the cached flow exactly as the graph stage warps (stg.warp.stage.warp_step with the default warp
settings), binarised at the graph's q_threshold.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import zarr

from stg.datasets import open_dataset, read_annotation
from stg.flow.store import read_flow
from stg.graph.boxes import box_iou_matrix, mask_box
from stg.graph.motion import flow_shifted_box, predict_box
from stg.graph.settings import GraphSettings
from stg.warp.ops import one_hot
from stg.warp.stage import warp_step

REPO = Path(__file__).resolve().parents[1]
# (n, size_n, velocity); None: the previous box
SETTINGS = [(None, None, None), (10, 10, "mean"), (10, 1, "mean"), (5, 1, "mean"), (3, 3, "mean"), (3, 1, "mean"),
            (1, 1, "mean"), (10, 1, "median"), (5, 1, "median"), (5, 5, "median"), (3, 1, "median")]
WRONG_SELECTION_RATE = 0.05


def ground_truth(video) -> list[np.ndarray]:
    """The object's mask in every frame (DAVIS 2016: one object, every frame annotated)."""
    return [read_annotation(video.annotation_paths[name], video.layout) == 1 for name in video.frame_names]


def boxes_of(masks: list[np.ndarray]) -> list[np.ndarray | None]:
    """(x0, y0, x1, y1) of each mask, None when it is empty."""
    boxes = [mask_box(mask).astype(np.float64) for mask in masks]
    return [None if np.isnan(box).any() else box for box in boxes]


def flow_ious(masks: list[np.ndarray], flow: zarr.Group) -> dict[str, list[float]]:
    """IoU with the box of t (where both exist) of B(Q_t), Q_t the mask of t-1 warped as the graph warps it
    (`flow`), and of the box of t-1 moved by the flow's shift of the mask's centroid (`flow_shift`)."""
    q_threshold = GraphSettings.from_dict({}).q_threshold
    boxes, ious = boxes_of(masks), {"flow": [], "flow_shift": []}
    for t in range(1, len(masks)):
        if boxes[t] is None or boxes[t - 1] is None:
            continue
        warped, _ = warp_step(one_hot(masks[t - 1].astype(np.uint8), 1), read_flow(flow, "backward", t - 1),
                              read_flow(flow, "forward", t - 1), {})
        q_binary = warped[0] >= q_threshold
        predicted = mask_box(q_binary).astype(np.float64)
        if np.isnan(predicted).any():
            predicted = boxes[t - 1]
        shifted = flow_shifted_box(boxes[t - 1], masks[t - 1], q_binary).astype(np.float64)
        for name, box in (("flow", predicted), ("flow_shift", shifted)):
            ious[name].append(float(box_iou_matrix(box[None], boxes[t][None])[0, 0]))
    return ious


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
    parser.add_argument("--flow", type=Path, help="folder of the flow stage's <video>.zarr stores of this dataset")
    args = parser.parse_args()
    dataset = open_dataset(args.root, "davis2016", args.split, "480p")
    masks = {name: ground_truth(dataset.video(name)) for name in dataset.video_names()}
    videos = [boxes_of(video_masks) for video_masks in masks.values()]
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
        if args.flow is not None and title == "ground-truth history":
            by_video = [flow_ious(video_masks, zarr.open_group(args.flow / f"{name}.zarr", mode="r"))
                        for name, video_masks in masks.items()]
            for source, title in (("flow", "B(Q_t): the mask of t-1 warped by the flow (motion_source: flow)"),
                                  ("flow_shift", "the box of t-1 moved by the flow's centroid shift "
                                                 "(motion_source: flow_shift)")):
                per_video = [video[source] for video in by_video]
                ious = np.concatenate([np.asarray(v) for v in per_video])
                print(f"| {title} | {ious.mean():.3f} | {np.mean(ious < 0.3):.3f} | {np.mean(ious < 0.5):.3f} | "
                      f"{min(np.mean(v) for v in per_video if v):.3f} |")


if __name__ == "__main__":
    main()
