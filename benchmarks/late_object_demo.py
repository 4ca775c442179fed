"""J and F of an object that enters mid-video, through the whole pipeline, on synthetic YouTube-VOS `train` data.

Writes a tiny YouTube-VOS train split (stg.datasets.synthetic_layouts: the first video's third object enters at
frame 3; train splits are annotated on every frame, so they can be scored), runs the given variants with Snakemake
in a working folder (the repository's config plus this dataset) and prints each run's per-object table:

    python benchmarks/late_object_demo.py --work /tmp/late_demo --variants propagate baseline
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    from stg.datasets import open_dataset
    from stg.datasets.synthetic_layouts import write_youtube_vos

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="a new working folder (data, cache, results)")
    parser.add_argument("--variants", nargs="+", default=["propagate", "baseline"])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=427)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    root = args.work / "data" / "ytvos"
    write_youtube_vos(root, split="train", num_frames=args.frames, height=args.height, width=args.width)
    override = args.work / "late_demo.yaml"
    override.write_text(yaml.safe_dump({"datasets": {"ytvos": {"layout": "youtube_vos", "root": str(root.resolve()),
                                                                "splits": ["train"]}}}))
    targets = [f"results/ytvos_train__{variant}" for variant in args.variants]
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(args.work),
                    "--cores", str(args.cores), *targets, "--configfile", str(REPO / "config" / "config.yaml"),
                    str(override.resolve())], check=True)
    starts = {video.name: video.object_starts for video in open_dataset(root, "youtube_vos", "train").videos()}
    print(f"object starts (frame index): {starts}")
    for target in targets:
        print(f"\n{target}")
        print((args.work / target / "per-sequence_results-train.csv").read_text().strip())


if __name__ == "__main__":
    main()
