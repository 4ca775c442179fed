"""Table 4's rows over several trainings: J&F per row and training, their mean, and the row-to-row differences.

    python benchmarks/fold_seeds.py --runs results/davis16tr_foldcheck results/davis16s1_foldcheck \
        results/davis16s2_foldcheck --rows fold-greedy-frag25 fold-motion-l5-frag25 ...

`--runs` are result prefixes, one per training (`<dataset>_<split>`; a row's folder is `<prefix>__<row>`), `--rows`
the variants in Table 4's order. One training decides whether a row drifts on one or two of foldcheck's 8 videos,
which moves it by 0.01-0.05 (README: Table 4), more than the 0.005 the row order allows; the mean over trainings
is the figure that order can be read from. Prints Markdown: the rows, the differences to the previous row (per
training, mean, and its paired standard error), the per-video means, and issue 10's checks on the means (each row
at least the previous one within --tolerance, the --full-row row at least the first row + --margin).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from fold_report import sequence_scores  # the check fold's per-sequence J&F, read as fold_report reads it


def global_score(run: Path) -> float:
    """The run's J&F-Mean as its metrics stage wrote it (run.json)."""
    return float(json.loads((run / "run.json").read_text())["global"]["J&F-Mean"])


def row_differences(scores: np.ndarray) -> np.ndarray:
    """(rows, runs) J&F -> (rows - 1, runs): each row minus the previous one, per training."""
    return np.diff(scores, axis=0)


def standard_error(differences: np.ndarray) -> np.ndarray:
    """Standard error of the mean of each row's per-training differences (paired: the same training in both rows);
    NaN with one training. Says how far the mean difference itself may move with other trainings."""
    differences = np.atleast_2d(differences)
    if differences.shape[1] < 2:
        return np.full(differences.shape[0], np.nan)
    return differences.std(axis=1, ddof=1) / np.sqrt(differences.shape[1])


def order_checks(means: np.ndarray, tolerance: float, margin: float, full_row: int) -> list[tuple[str, bool]]:
    """Issue 10's criteria on the rows' means: row i >= row i-1 - tolerance; row `full_row` >= row 0 + margin."""
    checks = [(f"row {i} >= row {i - 1} - {tolerance}", bool(means[i] >= means[i - 1] - tolerance))
              for i in range(1, len(means))]
    checks.append((f"row {full_row} >= row 0 + {margin}", bool(means[full_row] >= means[0] + margin)))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="result prefixes, one per training")
    parser.add_argument("--rows", nargs="+", required=True, help="Table 4's variants, in order")
    parser.add_argument("--full-row", type=int, default=3, help="index of the full STG-Net row (baseline: 0)")
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--margin", type=float, default=0.03)
    args = parser.parse_args()
    folders = [[Path(f"{prefix}__{row}") for prefix in args.runs] for row in args.rows]
    scores = np.array([[global_score(run) for run in row] for row in folders])
    means = scores.mean(axis=1)
    trainings = [Path(prefix).name for prefix in args.runs]

    print("| row | " + " | ".join(trainings) + " | mean | spread (max - min) |")
    print("|---|" + "---|" * (len(trainings) + 2))
    for name, row, mean in zip(args.rows, scores, means, strict=True):
        print(f"| {name} | " + " | ".join(f"{s:.3f}" for s in row) + f" | **{mean:.3f}** | {np.ptp(row):.3f} |")
    print()
    print("| difference | " + " | ".join(trainings) + " | mean | standard error (paired) |")
    print("|---|" + "---|" * (len(trainings) + 2))
    differences = [(f"{args.rows[i]} - {args.rows[i - 1]}", delta)
                   for i, delta in enumerate(row_differences(scores), start=1)]
    differences.append((f"{args.rows[args.full_row]} - {args.rows[0]}", scores[args.full_row] - scores[0]))
    for label, delta in differences:
        print(f"| {label} | " + " | ".join(f"{d:+.3f}" for d in delta)
              + f" | **{delta.mean():+.3f}** | {standard_error(delta)[0]:.3f} |")
    print()
    per_video = [[sequence_scores(run) for run in row] for row in folders]
    videos = sorted({video for row in per_video for table in row for video in table})
    print("| video (mean over trainings) | " + " | ".join(args.rows) + " |")
    print("|---|" + "---|" * len(args.rows))
    for video in videos:
        cells = [np.mean([table.get(video, np.nan) for table in row]) for row in per_video]
        print(f"| {video} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    print()
    for label, passed in order_checks(means, args.tolerance, args.margin, args.full_row):
        print(f"- {label} (means): {'met' if passed else 'NOT met'}")


if __name__ == "__main__":
    main()
