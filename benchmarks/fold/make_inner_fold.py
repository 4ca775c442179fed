"""An inner fold inside foldtrain, for choosing settings without looking at foldcheck.

The check fold (../shared/data/davis2016-train/README) scores on foldcheck; a setting chosen from those 8 videos
would be tuned to them. This splits foldtrain's 20 videos in two by their sorted order (even positions: innertrain,
odd: innercheck) into a dataset folder of links (no image is copied) with DAVIS 2016 split files:

    python benchmarks/fold/make_inner_fold.py            # -> cache/inner_fold/davis2016-train
    snakemake --cores 2 --configfile benchmarks/fold/config.yaml benchmarks/fold/inner.yaml -- \
        results/davis16in_innercheck__fold-greedy ...
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from stg.datasets.davis import davis2016_line_video as video_of
from stg.datasets.splits import read_split_lines


def inner_splits(lines: list[str]) -> dict[str, list[str]]:
    videos = sorted({video_of(line) for line in lines})
    halves = {"innertrain": set(videos[0::2]), "innercheck": set(videos[1::2])}
    return {name: [line for line in lines if video_of(line) in members] for name, members in halves.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("../shared/data/davis2016-train"))
    parser.add_argument("--out", type=Path, default=Path("cache/inner_fold/davis2016-train"))
    args = parser.parse_args()
    split_file = args.root / "ImageSets" / "480p" / "foldtrain.txt"
    lines = list(read_split_lines(split_file, "foldtrain"))
    (args.out / "ImageSets" / "480p").mkdir(parents=True, exist_ok=True)
    for folder in ("JPEGImages", "Annotations"):
        link = args.out / folder
        if not link.is_symlink():
            link.symlink_to(os.path.relpath((args.root / folder).resolve(), args.out.resolve()))
    for name, chosen in inner_splits(lines).items():
        (args.out / "ImageSets" / "480p" / f"{name}.txt").write_text("".join(f"{line}\n" for line in chosen))
        print(f"{name}: {', '.join(sorted({video_of(line) for line in chosen}))} ({len(chosen)} frames)")


if __name__ == "__main__":
    main()
