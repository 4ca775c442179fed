"""The graph stage's settings (config `stages.graph`), with the paper's values as defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from stg.errors import InputError
from stg.graph.temporal import MEMORY_POLICIES

# Settings that belong to the run plan or the features backend, not to the per-frame algorithm.
NOT_ALGORITHM = {"backend", "device", "passes", "mobilenet_v2", "resnet"}


@dataclass(frozen=True)
class GraphSettings:
    """Every component switchable, so Table 4's ablation rows can be re-run.

    motion off: the previous frame's box stands in for p (the paper's baseline); spatial off: the
    proposals are thresholded as they are (l = 0) and Eq. 6 picks one greedily; temporal off: the
    selected mask is the result.
    """

    motion: bool = True
    motion_history: int = 10            # n of Eq. 2
    spatial: bool = True
    spatial_iterations: int = 2         # l of Eqs. 4-5
    alpha: float = 0.7                  # Eq. 3
    beta: float = 0.3
    threshold: float = 0.2              # thr of M^ = (h > thr), spatial and temporal
    lambda1: float = 0.4                # Eq. 6
    lambda2: float = 0.6
    q_threshold: float = 0.5            # the warped soft mask Q is binarised at this level for Eq. 6
    temporal: bool = True
    temporal_size: tuple[int, int] = (256, 256)   # H1 x W1 crops for the key maps
    temporal_margin: float = 0.1        # crop = B(M) grown by this fraction of its size on every side
    temporal_temperature: float | None = None     # None: the paper's plain dot product in Eq. 7
    memory: str = "all"                 # all (the paper) | first_and_window
    memory_window: int = 10
    memory_values: str = "chosen"       # value maps: the selected masks M^_r (METHOD.md) | the final refined masks

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> GraphSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known - NOT_ALGORITHM)
        if unknown:
            raise InputError("stages.graph", f"unknown setting(s) {', '.join(unknown)}")
        values = {k: v for k, v in settings.items() if k in known}
        if "temporal_size" in values:
            values["temporal_size"] = tuple(int(v) for v in values["temporal_size"])
        result = cls(**values)
        result.check()
        return result

    def check(self) -> None:
        problems = {
            "motion_history": self.motion_history < 1,
            "spatial_iterations": self.spatial_iterations < 0,
            "threshold": not 0 <= self.threshold < 1,
            "memory": self.memory not in MEMORY_POLICIES,
            "memory_window": self.memory_window < 1,
            "memory_values": self.memory_values not in ("chosen", "final"),
            "temporal_size": len(self.temporal_size) != 2 or min(self.temporal_size) < 16,
        }
        for name, bad in problems.items():
            if bad:
                raise InputError(f"stages.graph.{name}", f"invalid value {getattr(self, name)!r}")

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["temporal_size"] = list(self.temporal_size)
        return values
