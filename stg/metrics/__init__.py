"""DAVIS J / F / J&F metrics, equal to the official davis2017-evaluation toolkit (docs METRICS.md).

The evaluation entry point is `stg.metrics.evaluate.evaluate`; it is deliberately not re-exported
here, so that `stg.metrics.evaluate` keeps naming the module rather than the function.
"""

from stg.metrics.evaluate import format_global_table, run_metrics, write_outputs
from stg.metrics.measures import db_statistics, f_measure, frame_scores, jaccard, seg2bmap, tolerance_radius

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
