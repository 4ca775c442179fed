"""Per-object DAVIS statistics and global means from per-frame J and F, in the official toolkit's order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stg.errors import InputError
from stg.metrics.measures import db_statistics
from stg.metrics.reading import SequencePlan

Scores = tuple[np.ndarray, np.ndarray]  # J and F, each (scored frames, objects)


def summarise(plans: Sequence[SequencePlan], scores: dict[str, Scores]) -> dict:
    """Per-object statistics and global means, in the official row order and operation order."""
    objects: dict[str, dict[str, float]] = {}
    per_frame: dict[str, dict[str, list[float]]] = {}
    for plan in plans:
        j_values, f_values = scores[plan.name]
        for index in range(plan.num_objects):
            name = f"{plan.name}_{index + 1}"
            rows: slice | list[int] = slice(None)
            frames = list(plan.frames)
            if plan.object_frames is not None:  # objects that start late: each from its start on
                rows = list(plan.object_frames[index])
                if not rows:
                    continue
                frames = [plan.frames[row] for row in rows]
            j_object, f_object = j_values[rows, index], f_values[rows, index]
            j_mean, j_recall, j_decay = db_statistics(j_object)
            f_mean, f_recall, f_decay = db_statistics(f_object)
            objects[name] = {"J-Mean": j_mean, "J-Recall": j_recall, "J-Decay": j_decay,
                             "F-Mean": f_mean, "F-Recall": f_recall, "F-Decay": f_decay}
            per_frame[name] = {"frames": frames, "J": j_object.tolist(), "F": f_object.tolist()}
    return {"global": global_means(objects), "objects": objects, "per_frame": per_frame}


def global_means(objects: dict[str, dict[str, float]]) -> dict[str, float]:
    """Plain means over object rows (objects weigh equally); J&F-Mean = (J-Mean + F-Mean) / 2."""
    if not objects:
        raise InputError("objects", "no object was evaluated")

    def column(key: str) -> float:
        return float(np.mean([row[key] for row in objects.values()]))

    j_mean, f_mean = column("J-Mean"), column("F-Mean")
    return {"J&F-Mean": float((j_mean + f_mean) / 2.0), "J-Mean": j_mean, "J-Recall": column("J-Recall"),
            "J-Decay": column("J-Decay"), "F-Mean": f_mean, "F-Recall": column("F-Recall"),
            "F-Decay": column("F-Decay")}
