"""Does the motion model pick worse masks, or only different ones? Eq. 6 under both p's, frame by frame.

Usage (from the repository root, after the check fold's baseline and motion rows ran; seed 0's stores):
    python benchmarks/motion_selection_probe.py [--split foldcheck] [--videos bear ...]

Table 4's motion row differs from the baseline row in p alone (B(Q_t) instead of the previous box), and a row's
J&F compares whole tracks: once one selection differs, the two rows track from different masks and every later
frame differs too. This probe separates the one-step effect from that divergence. It runs the greedy tracker
(stg.graph.tracker, the rows' own settings) along one row's track, and at every frame also scores Eq. 6 with the
other row's p on the same proposals, Q and threshold (the proposals are segmented for the candidates of both p's,
stg.graph.proposals.OnlineProposals' filter per p), then compares the two picks with the ground truth: frames where
they differ, and there the J of each (after min_fragment, as the result). The pick under the track's own p is
checked against the tracker's, and the track against the row's stored labels, so the probe cannot drift from
the stage. Reads the check fold's cached detect, warp and flow stores and seed 0's segmenter; writes nothing.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from stg.config import DEFAULT_CONFIG_PATH, deep_merge, plan_run
from stg.datasets import open_dataset, read_annotation, read_frame
from stg.flow.store import read_flow
from stg.graph.fragments import drop_fragments
from stg.graph.motion import assign_proposals, graph_owners
from stg.graph.proposals import OnlineProposals
from stg.graph.selection import mask_iou, select, selection_scores
from stg.graph.settings import GraphSettings
from stg.graph.tracker import GraphTracker, Proposals
from stg.segment.backends import make_segment_backend
from stg.store import open_store
from stg.warp.ops import one_hot
from stg.warp.stage import warp_step

REPO = Path(__file__).resolve().parents[1]
ROWS = {"baseline": "fold-greedy-frag25", "motion": "fold-motion-l5-frag25"}


def candidates(proposals: Proposals, predicted: np.ndarray, join_iou: float) -> np.ndarray:
    """Rows of the proposals Eq. 6 chooses from for one object with p = `predicted` (the tracker's gate)."""
    p = predicted[None]
    return np.flatnonzero(graph_owners(assign_proposals(proposals.boxes, p), proposals.boxes, p, join_iou) == 0)


def pick(proposals: Proposals, predicted: np.ndarray, q_binary: np.ndarray, graph: GraphSettings) -> np.ndarray | None:
    """The result mask Eq. 6 selects with p = `predicted` (after min_fragment), or None without candidates."""
    rows = candidates(proposals, predicted, graph.join_iou)
    if len(rows) == 0:
        return None
    binary = proposals.masks[rows] > graph.threshold
    chosen = select(selection_scores(binary, predicted, q_binary, graph.lambda1, graph.lambda2),
                    proposals.scores[rows])
    return drop_fragments(binary[chosen], graph.min_fragment) if binary[chosen].any() else None


def union_of_candidates(source: OnlineProposals, frame: int, image: np.ndarray, warped: np.ndarray,
                        predicted: list[np.ndarray]) -> Proposals:
    """The proposals segmented for the candidates of every p in `predicted`, each box once: given the p's as
    pseudo-objects, the source keeps a box iff its best overlap with them reaches join_iou, i.e. iff some p's gate
    admits it."""
    return source(frame, image, warped, np.stack(predicted))


def probe_video(video, row: str, other: str, graph_by_row: dict[str, GraphSettings], stores: dict, segmenter,
                q_mode: str) -> dict[str, list]:
    """Track `row` through the video; at every frame also pick with `other`'s p (see the module docstring)."""
    graph = graph_by_row[row]
    detect, warp, flow = stores["detect"], stores["warp"], stores["flow"]
    warp_settings = dict(warp.attrs.get("settings", {}))
    source = OnlineProposals(detect, segmenter, q_mode, graph.q_boxes, join_iou=graph.join_iou)
    trackers = {name: GraphTracker(settings, None, 1) for name, settings in graph_by_row.items()}
    first = read_annotation(video.annotation_paths[video.frame_names[0]], video.layout)
    labels0 = np.where(first == 1, 1, 0).astype(np.uint8)
    for tracker in trackers.values():
        tracker.start(read_frame(video.frame_paths[0]), labels0)
    previous, record = labels0, {"own": [], "other": [], "agrees": [], "labels": [labels0]}
    for t in tqdm(range(1, len(video.frame_names)), desc=f"{row} {video.name}", leave=False):
        warped, _ = warp_step(one_hot(previous, 1), read_flow(flow, "backward", t - 1),
                              read_flow(flow, "forward", t - 1), warp_settings)
        image = read_frame(video.frame_paths[t])
        # both p's from the same track: the other row's tracker shares this track's box history
        trackers[other].history = [list(trackers[row].history[0])]
        p_own, p_other = trackers[row].predicted_boxes(warped)[0], trackers[other].predicted_boxes(warped)[0]
        proposals = union_of_candidates(source, t, image, warped, [p_own, p_other])
        q_binary = warped[0] >= graph.q_threshold
        mine, theirs = pick(proposals, p_own, q_binary, graph), pick(proposals, p_other, q_binary, graph)
        result = trackers[row].step(t, image, proposals, warped)
        truth = read_annotation(video.annotation_paths[video.frame_names[t]], video.layout) == 1
        tracked = result.labels == 1
        record["labels"].append(result.labels)
        record["agrees"].append(mine is None or bool((mine == tracked).all()))
        if mine is not None and theirs is not None and not (mine == theirs).all():
            record["own"].append(mask_iou(mine, truth))
            record["other"].append(mask_iou(theirs, truth))
        previous = result.q_labels
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="foldcheck")
    parser.add_argument("--videos", nargs="*")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; the graph jobs run with 1, and another count can flip a near-tie")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = deep_merge(yaml.safe_load(Path(DEFAULT_CONFIG_PATH).read_text()),
                        yaml.safe_load((REPO / "benchmarks" / "fold" / "config.yaml").read_text()))
    plans = {name: plan_run(config, "davis16tr", args.split, variant) for name, variant in ROWS.items()}
    graph_by_row = {name: GraphSettings.from_dict(plan.settings["graph"]) for name, plan in plans.items()}
    plan = plans["baseline"]
    segment_settings = copy.deepcopy(plan.segmenter["graph"])
    segmenter = make_segment_backend(segment_settings, "cpu")
    root = Path(plan.settings["dataset"]["root"])
    dataset = open_dataset(root if root.is_absolute() else REPO / root, "davis2016", args.split, "480p")
    cache = REPO / "cache" / "davis16tr"
    print("| track | video | frames | Eq. 6 picks differ | J of the track's pick there | J of the other p's pick "
          "| other better / worse by > 0.05 |")
    print("|---|---|---|---|---|---|---|")
    for name in args.videos or dataset.video_names():
        video = dataset.video(name)
        stores = {stage: open_store(cache / stage / plan.keys[stage] / f"{name}.zarr", stage)
                  for stage in ("detect", "warp", "flow")}
        for row, other in (("baseline", "motion"), ("motion", "baseline")):
            record = probe_video(video, row, other, graph_by_row, stores, segmenter,
                                 segment_settings.get("q_mode", "union"))
            if not all(record["agrees"]):
                raise SystemExit(f"{name}: the probe's pick under the {row} row's own p differs from the tracker's")
            stored = cache / "graph" / plans[row].keys["graph"] / f"{name}.zarr"
            if stored.exists() and not np.array_equal(open_store(stored, "labels")["labels"][:],
                                                      np.stack(record["labels"])):
                print(f"note: {name}'s {row} track differs from the row's stored labels ({stored}): CPU threads "
                      "can flip a near-tie; the per-frame comparison holds for the probe's own track")
            own, theirs = np.asarray(record["own"]), np.asarray(record["other"])
            gap = theirs - own
            print(f"| {row} | {name} | {len(video.frame_names) - 1} | {len(own)} | "
                  f"{own.mean() if len(own) else float('nan'):.3f} | {theirs.mean() if len(own) else float('nan'):.3f} "
                  f"| {int((gap > 0.05).sum())} / {int((gap < -0.05).sum())} |")


if __name__ == "__main__":
    main()
