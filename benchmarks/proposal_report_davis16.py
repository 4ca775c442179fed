"""Proposal quality on real video: box recall and oracle J of the default chain on DAVIS 2016 train.

Usage (from the repository root):
    python benchmarks/proposal_report_davis16.py [--root ../shared/data/davis2016-train] [--work DIR]
                                                 [--videos bear,boat] [--segment '{"grabcut": {"max_side": null}}']

Runs, per video, the stages with config/config.yaml's default settings through the `stg` CLI:
flow (dis) -> warp -> detect (motion) -> segment (grabcut), then prints per video the proposals per
frame, the box recall at IoU >= 0.5 and the oracle J (best proposal mask per object and frame),
frames 1.. (frame 0 is the input annotation), and the pooled figures. `--segment` / `--detect` merge
JSON overrides into the default settings. Stores go under --work (default: a temporary folder);
existing stores there are reused, so a second run with other segment settings only re-segments.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "davis2016-train"


def run_stage(argv: list[str], out: Path) -> float:
    """Run one `stg` stage unless its store exists; returns the seconds it took."""
    from stg.cli import main

    if out.exists():
        return 0.0
    start = time.perf_counter()
    if main([*argv, "--out", str(out)]) != 0:
        raise SystemExit(f"stg {argv[0]} failed for {out}")
    return time.perf_counter() - start


def main() -> None:
    from stg.config import deep_merge, load_config, semantic_settings, stage_key
    from stg.datasets import open_dataset
    from stg.proposals_report import aggregate
    from stg.store import open_store

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--split", default="train")
    parser.add_argument("--work", type=Path, default=None, help="folder for the stores (default: temporary)")
    parser.add_argument("--videos", default="", help="comma-separated subset (default: all in the split)")
    parser.add_argument("--detect", default="{}", help="JSON merged into stages.detect")
    parser.add_argument("--segment", default="{}", help="JSON merged into stages.segment")
    args = parser.parse_args()
    if not args.root.is_dir():
        print(f"skipped: DAVIS 2016 sequences not found at {args.root} (only present in this project's CI)")
        return

    stages = load_config()["stages"]
    settings = {"flow": stages["flow"], "warp": stages["warp"],
                "detect": deep_merge(stages["detect"], json.loads(args.detect)),
                "segment": deep_merge(stages["segment"], json.loads(args.segment))}
    semantic = {stage: semantic_settings(stage, value) for stage, value in settings.items()}
    keys: dict[str, str] = {}
    for stage, upstream in (("flow", []), ("warp", ["flow"]), ("detect", ["warp"]), ("segment", ["detect", "warp"])):
        keys[stage] = stage_key(stage, semantic[stage], [keys[name] for name in upstream])
    dataset = open_dataset(args.root, "davis2016", args.split)
    names = [n for n in args.videos.split(",") if n] or dataset.video_names()

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        reports, seconds = [], {stage: 0.0 for stage in keys}
        for name in names:
            common = ["--dataset-root", str(args.root), "--layout", "davis2016", "--split", args.split, "--video", name]
            store = {stage: work / stage / keys[stage] / f"{name}.zarr" for stage in keys}
            seconds["flow"] += run_stage(["flow", *common, "--settings", json.dumps(semantic["flow"]),
                                          "--key", keys["flow"]], store["flow"])
            seconds["warp"] += run_stage(["warp", *common, "--flow", str(store["flow"]), "--settings",
                                          json.dumps(semantic["warp"]), "--key", keys["warp"]], store["warp"])
            seconds["detect"] += run_stage(["detect", *common, "--warp", str(store["warp"]), "--settings",
                                            json.dumps(semantic["detect"]), "--key", keys["detect"]], store["detect"])
            seconds["segment"] += run_stage(["segment", *common, "--detect", str(store["detect"]), "--warp",
                                             str(store["warp"]), "--settings", json.dumps(semantic["segment"]),
                                             "--key", keys["segment"]], store["segment"])
            reports.append(open_store(store["segment"], "segment").attrs["proposal_report"])

    summary = aggregate(reports)
    print(f"\nDAVIS 2016 {args.split} at {args.root}: detect {json.dumps(semantic['detect'])}")
    print(f"segment {json.dumps(semantic['segment'])}")
    print(f"{'video':<18} {'frames':>6} {'props/frame':>11} {'obj-frames':>10} {'recall@0.5':>10} {'oracle J':>9}")
    for report in reports:
        print(f"{report['video']:<18} {report['frames']:>6} {report['mean_proposals_per_frame']:>11.2f} "
              f"{report['object_frames']:>10} {report['recall']:>10.3f} {report['oracle_j']:>9.3f}")
    overall = summary["overall"]
    print(f"{'pooled':<18} {'':>6} {overall['mean_proposals_per_frame']:>11.2f} {overall['object_frames']:>10} "
          f"{overall['recall']:>10.3f} {overall['oracle_j']:>9.3f}")
    print(f"{'video mean':<18} {'':>6} {'':>11} {'':>10} {overall['recall_video_mean']:>10.3f} "
          f"{overall['oracle_j_video_mean']:>9.3f}")
    print("stage seconds (this run, reused stores count 0): "
          + ", ".join(f"{stage} {value:.1f}" for stage, value in seconds.items()))


if __name__ == "__main__":
    main()
