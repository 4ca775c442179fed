"""The check fold's table: J&F per sequence and overall, and seconds per frame of every stage, for finished runs.

    python benchmarks/fold_report.py results/davis16tr_foldcheck__propagate results/davis16tr_foldcheck__fold-full

Reads each run folder's per-sequence CSV and run.json (wall time per stage, summed over the run's jobs, from
Snakemake's benchmark files); prints a Markdown table. Nothing is estimated: a stage a run did not execute (its
store was cached by another run) shows the time of the job that made it, which run.json records all the same.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def sequence_scores(run: Path) -> dict[str, float]:
    """Sequence -> J&F mean (the mean of J-Mean and F-Mean, as the DAVIS toolkit's global row)."""
    csv_file = next(run.glob("per-sequence_results-*.csv"), None)
    if csv_file is None:
        raise FileNotFoundError(f"{run}: no per-sequence_results-*.csv (is the run finished?)")
    with csv_file.open() as handle:
        rows = list(csv.DictReader(handle))
    return {row["Sequence"]: (float(row["J-Mean"]) + float(row["F-Mean"])) / 2 for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    infos = {run.name.split("__")[-1]: (run, json.loads((run / "run.json").read_text())) for run in args.runs}
    scores = {name: sequence_scores(run) for name, (run, _) in infos.items()}
    sequences = sorted({seq for table in scores.values() for seq in table})
    names = list(infos)
    print("| sequence | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for seq in sequences:
        print(f"| {seq} | " + " | ".join(f"{scores[n].get(seq, float('nan')):.3f}" for n in names) + " |")
    print("| **J&F (global)** | " + " | ".join(f"**{infos[n][1]['global']['J&F-Mean']:.3f}**" for n in names) + " |")
    print("| J | " + " | ".join(f"{infos[n][1]['global']['J-Mean']:.3f}" for n in names) + " |")
    print("| F | " + " | ".join(f"{infos[n][1]['global']['F-Mean']:.3f}" for n in names) + " |")
    print()
    for name, (_, info) in infos.items():
        frames = sum(len(list((infos[name][0] / "Annotations" / video).glob("*.png"))) for video in info["videos"])
        if not frames:  # a copied or unfinished run folder: nothing to divide by
            print(f"{name}: no masks under {infos[name][0] / 'Annotations'}: no seconds per frame")
            continue
        timing = {stage: t for stage, t in info["timing"].items() if stage not in ("synth", "results")}
        per_frame = {stage: t["wall_s"] / frames for stage, t in timing.items()}
        total = sum(per_frame.values())
        parts = ", ".join(f"{stage} {seconds:.3f}" for stage, seconds in per_frame.items())
        print(f"{name}: {frames} frames; seconds per frame: {parts}; total {total:.3f} s/frame "
              f"({1 / total if total else float('nan'):.2f} frames/s)")


if __name__ == "__main__":
    main()
