"""What the spatial graph (Eqs. 3-5) does to the selected mask, measured on cached proposals of a training split.

For every object in every `--every`-th frame of the split's videos (frame t >= 1, the object visible), it takes
the proposals the object's predicted box p takes (p from the motion model over its ground-truth boxes, as
stg.train.graph samples them) and Q from the warp store, and prints the mean J of:

- oracle: the best single proposal (binarised at 0.5): what any selection could reach;
- greedy: Eq. 6's choice among the raw proposals (no spatial graph);
- spatial: Eq. 6's choice after l spatial updates with the node features of `--weights` (ImageNet when
  omitted), at each `--thresholds` level;
- with `--join-iou`: the same when only proposals with IoU(b_v, p) >= the level join the graph;
- with `--q-join`: the same (thr 0.5) when, of those, only the nodes whose mask overlaps Q by IoU >= the level are
  connected (the others keep their own masks and stay selectable);
- the graph's size and its edge weights (mean W over v != u, and the share of the mean weight that goes to
  proposals whose own mask is poor, J < 0.5).

It reads the stores the workflow caches for `training.graph` (segment and warp store folders of one key each):

    python benchmarks/spatial_graph_probe.py --root ../shared/data/davis2016-train --split foldtrain \\
        --segment cache/davis16tr/segment/<key> --warp cache/davis16tr/warp/<key> [--weights model.pt]

This is a probe on the training fold (choose settings there, report on the check fold), not a test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from stg.datasets import open_dataset
from stg.features.mobilenet import MobileNetV2Features
from stg.graph.boxes import box_iou_matrix, expand_box
from stg.graph.crops import crop
from stg.graph.selection import select, selection_scores
from stg.graph.spatial import edge_weights, spatial_update
from stg.train.graph import load_graph_training_video


def mask_j(mask: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(mask, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(mask, truth).sum() / union)


def probe(args: argparse.Namespace) -> dict[str, list[float]]:
    torch.set_num_threads(args.threads)
    dataset = open_dataset(args.root, "davis2016", args.split)
    features = MobileNetV2Features(weights=args.weights, device="cpu")
    figures: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    names = args.videos or dataset.video_names()
    for name in tqdm(names, desc="videos"):
        video = load_graph_training_video(dataset.video(name), Path(args.segment) / f"{name}.zarr",
                                          Path(args.warp) / f"{name}.zarr")
        height, width = video.shape
        for frame, obj, rows, predicted in video.samples(10):
            if frame % args.every:
                continue
            truth = video.labels(frame) == obj
            masks = video.masks(rows)
            q_binary = video.prior(frame, obj) >= 0.5
            binary = masks > 0.5
            own = np.array([mask_j(m, truth) for m in binary])
            add("nodes", len(rows))
            add("oracle", own.max())
            greedy = select(selection_scores(binary, predicted, q_binary), video.scores[rows])
            add("greedy", own[greedy])
            if len(rows) < 2:
                for join in args.join_iou:
                    for level in args.thresholds:
                        add(f"spatial@{level}" + (f" join>={join}" if join > 0 else ""), own[greedy])
                continue
            image = video.image(frame)
            crops = [crop(image, expand_box(b, 0.0, height, width)) for b in video.boxes[rows]]
            weights = edge_weights(features.node_features(crops), video.boxes[rows])
            off = ~np.eye(len(rows), dtype=bool)
            add("mean W", float(weights[off].mean()))
            poor = own < 0.5
            if poor.any() and (~poor).any():
                add("W share to poor nodes", float(weights[:, poor].sum() / weights.sum()))
                add("poor node share", float(poor.mean()))
            box_overlap = box_iou_matrix(video.boxes[rows], predicted[None])[:, 0]
            for join in args.join_iou:
                members = np.flatnonzero(box_overlap >= join) if join > 0 else np.arange(len(rows))
                suffix = f" join>={join}" if join > 0 else ""
                if join > 0:
                    add(f"nodes{suffix}", len(members))
                if len(members) == 0:  # no proposal joins: the object falls back to Q, as inference does
                    for level in args.thresholds:
                        add(f"spatial@{level}{suffix}", mask_j(q_binary, truth))
                    continue
                states = spatial_update(masks[members], weights[np.ix_(members, members)], args.iterations)
                for level in args.thresholds:
                    updated = states > level
                    pick = select(selection_scores(updated, predicted, q_binary), video.scores[rows][members])
                    add(f"spatial@{level}{suffix}", mask_j(updated[pick], truth))
                q_overlap = np.array([mask_j(binary[m], q_binary) for m in members])
                for q_join in args.q_join:  # only members agreeing with Q are connected; the rest keep their masks
                    connected = q_overlap >= q_join
                    states = masks[members].astype(np.float32)
                    if connected.sum() > 1:
                        states[connected] = spatial_update(states[connected],
                                                           weights[np.ix_(members[connected], members[connected])],
                                                           args.iterations)
                    updated = states > 0.5
                    pick = select(selection_scores(updated, predicted, q_binary), video.scores[rows][members])
                    add(f"spatial@0.5{suffix} q>={q_join}", mask_j(updated[pick], truth))
                    add(f"connected{suffix} q>={q_join}", int(connected.sum()))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--segment", required=True, help="segment store folder (one key) of the split's videos")
    parser.add_argument("--warp", required=True, help="warp store folder (one key) of the split's videos")
    parser.add_argument("--weights", default=None, help="graph features model.pt (train_graph); ImageNet if omitted")
    parser.add_argument("--every", type=int, default=4, help="probe every n-th frame")
    parser.add_argument("--videos", nargs="+", default=None, help="these videos of the split (default: all)")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.2])
    parser.add_argument("--join-iou", type=float, nargs="+", default=[0.0],
                        help="a proposal joins the graph only if IoU(b_v, p) reaches this (0: any overlap, METHOD.md)")
    parser.add_argument("--q-join", type=float, nargs="+", default=[],
                        help="also: connect only the nodes whose mask overlaps Q by IoU >= this (thr 0.5)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    figures = probe(args)
    print(f"{args.split}: {len(figures.get('nodes', []))} (frame, object) samples, features "
          f"{args.weights or 'ImageNet'}, l = {args.iterations}, {time.perf_counter() - start:.0f} s")
    for name, values in figures.items():
        print(f"  {name:24s} mean {np.mean(values):.3f}  median {np.median(values):.3f}  (n = {len(values)})")


if __name__ == "__main__":
    main()
