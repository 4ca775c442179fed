"""`stg metrics`: evaluate a results folder, write the official tables and print the global one."""

from __future__ import annotations

from pathlib import Path

from stg.metrics.evaluation import evaluate
from stg.metrics.tables import format_global_table, write_outputs


def run_metrics(davis_root: Path, results_dir: Path, split: str, out_dir: Path, processes: int = 2,
                layout: str | None = None) -> dict:
    """evaluate + write_outputs + print the global table: what `stg metrics` runs (`layout`: see evaluate)."""
    metrics = evaluate(Path(davis_root), Path(results_dir), split, processes=processes, layout=layout)
    write_outputs(metrics, Path(out_dir), split)
    print(format_global_table(metrics, split))
    return metrics
