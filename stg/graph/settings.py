"""The graph stage's settings (config `stages.graph`): types, ranges and the paper's values live in the schema."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from stg.settings import StageSettings


@dataclass(frozen=True)
class GraphSettings(StageSettings):
    """Every component switchable, so Table 4's ablation rows can be re-run.

    motion off: the previous frame's box stands in for p (the paper's baseline); spatial off: the
    proposals are thresholded as they are (l = 0) and Eq. 6 picks one greedily; temporal off: the
    selected mask is the result. Built by `from_dict`, which validates and completes the settings
    from workflow/schemas/config.schema.yaml (the backend, device and passes are not fields).
    """

    stage = "graph"
    motion: bool
    motion_history: int                 # n of Eq. 2 (velocity)
    motion_size_history: int            # boxes averaged for p's size (the paper: the same n)
    motion_velocity: str                # mean (the paper) | median of the n steps
    motion_source: str                  # flow: B(Q_t) | flow_shift: previous box moved by Q's shift | boxes: Eq. 2
    spatial: bool
    spatial_iterations: int             # l of Eqs. 4-5
    join_iou: float                     # a proposal is a node (greedy: a candidate) only if IoU(b_v, p) >= join_iou
    alpha: float                        # Eq. 3
    edge_threshold: float               # edges with W_vu below this are cut (0: fully connected, as the paper)
    sender_nms: float                   # proposals NMS at this IoU suppresses send no message (0: all send, the paper)
    spatial_support: str                # where Eqs. 4-5 may change a node: image (the paper) | box | mask (its own)
    beta: float
    threshold: float                    # thr of M^ = (h > thr), spatial and temporal
    lambda1: float                      # Eq. 6
    lambda2: float
    q_threshold: float                  # the warped soft mask Q is binarised at this level for Eq. 6
    temporal: bool
    temporal_size: tuple[int, int]      # H1 x W1 crops for the key maps
    temporal_margin: float              # crop = B(M) grown by this fraction of its size on every side
    temporal_temperature: float | None  # None: the paper's plain dot product in Eq. 7
    temporal_threshold: float | None    # thr of Eq. 8's result (None: `threshold`, one thr as the paper)
    memory: str                         # all (the paper) | first_and_window
    memory_window: int
    q_source: str                       # Q_t warps the previous final masks | the selected ones (before Eqs. 7-8)
    memory_values: str                  # value maps: the selected masks M^_r (METHOD.md) | the final refined masks
    proposals: str                      # cached (segment store) | online (segmented in the frame loop with Q_t)
    q_boxes: bool                       # online: each object's own Q_t box is a proposal too
    min_fragment: float                 # result components below this fraction of the largest are dropped (0: off)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GraphSettings:
        settings = super().from_dict(values)
        return replace(settings, temporal_size=tuple(int(v) for v in settings.temporal_size))

    @property
    def needs_features(self) -> bool:
        """Whether the graph runs a CNN: the spatial graph with l > 0 or the temporal graph."""
        return self.temporal or (self.spatial and self.spatial_iterations > 0)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["temporal_size"] = list(self.temporal_size)
        return values
