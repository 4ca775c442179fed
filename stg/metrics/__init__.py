"""DAVIS J / F / J&F metrics, equal to the official davis2017-evaluation toolkit (docs METRICS.md).

One module per job, as the official toolkit keeps metrics, results and evaluation apart:
`measures` (J, F, statistics), `decode` (mask PNGs), `reading` (validated GT and result label maps),
`evaluation` (the process pool; entry point `stg.metrics.evaluation.evaluate`), `summary` (per-object
statistics, global means), `tables` (CSVs, metrics.json, the printed table) and `evaluate`
(`run_metrics`, what `stg metrics` runs). The function `evaluate` is deliberately not re-exported
here, so that `stg.metrics.evaluate` keeps naming the module rather than the function.
"""

from stg.metrics.evaluate import run_metrics
from stg.metrics.measures import db_statistics, f_measure, frame_scores, jaccard, seg2bmap, tolerance_radius
from stg.metrics.tables import format_global_table, write_outputs

__all__ = [
    "db_statistics",
    "f_measure",
    "format_global_table",
    "frame_scores",
    "jaccard",
    "run_metrics",
    "seg2bmap",
    "tolerance_radius",
    "write_outputs",
]
