"""Training: one loop (optimiser, schedule, AMP, checkpoints, resume, history) shared by every model.

Each model brings only a `TrainTask`: its network, its samples and its loss. Inference code never
imports this package, so running the pipeline does not pay for training's imports.
"""

from stg.train.loop import Recipe, TrainResult, TrainTask, train

__all__ = ["Recipe", "TrainResult", "TrainTask", "train"]
