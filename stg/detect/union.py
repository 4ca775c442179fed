"""The union of several backends' proposals: e.g. COCO detector boxes plus the flow-predicted motion boxes.

A COCO detector misses objects outside its 80 classes; the motion boxes (from the warped priors)
cover every annotated object but only where the flow put it. Their union gives the graph stage both.
Boxes are concatenated and sorted by score, without NMS across members: scores of different members
mean different things (detector confidence, soft IoU with the prior), so none may suppress another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stg.detect.base import FRAMES, FRAMES_AND_PRIORS, PRIORS, DetectBackend, DetectBatch, Detections
from stg.detect.ops import sort_by_score
from stg.errors import InputError

_SETTINGS = "stages.detect.union"


class UnionDetect:
    """Runs every member on the same frames and merges their proposals, frame by frame."""

    name = "union"

    def __init__(self, members: Sequence[DetectBackend], batch_size: int = 8) -> None:
        if len(members) < 2:
            raise InputError(f"{_SETTINGS}.backends", f"a union needs at least two backends, got {len(members)}")
        names = [member.name for member in members]
        if len(set(names)) != len(names) or "union" in names:
            raise InputError(f"{_SETTINGS}.backends", f"backends must be distinct and not 'union', got {names}")
        masks = {member.makes_masks for member in members}
        if len(masks) > 1:
            raise InputError(f"{_SETTINGS}.backends", "either all backends or none must make masks "
                             f"({', '.join(f'{m.name}: {m.makes_masks}' for m in members)})")
        self.members = list(members)
        self.makes_masks = masks.pop()
        self.batch_size = batch_size
        reads = {member.reads for member in members}
        self.reads = reads.pop() if len(reads) == 1 else FRAMES_AND_PRIORS

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "members": [member.identity() for member in self.members],
                "merge": "concatenated, sorted by score, no NMS across members"}

    def _member_batch(self, member: DetectBackend, batch: DetectBatch) -> DetectBatch:
        wants_frames = member.reads in (FRAMES, FRAMES_AND_PRIORS)
        wants_priors = member.reads in (PRIORS, FRAMES_AND_PRIORS)
        return DetectBatch(batch.video, batch.frames, images=batch.images if wants_frames else None,
                           priors=batch.priors if wants_priors else None)

    def detect(self, batch: DetectBatch) -> list[Detections]:
        per_member = [member.detect(self._member_batch(member, batch)) for member in self.members]
        merged = []
        for frame_detections in zip(*per_member, strict=True):
            found = [d for d in frame_detections if len(d)]  # an empty member's masks may lack the frame size
            if not found:
                merged.append(Detections.empty(with_masks=self.makes_masks))
                continue
            boxes = np.concatenate([d.boxes for d in found]).astype(np.float32)
            scores = np.concatenate([d.scores for d in found]).astype(np.float32)
            masks = np.concatenate([d.masks for d in found]) if self.makes_masks else None
            order = sort_by_score(boxes, scores)
            merged.append(Detections(boxes[order], scores[order], None if masks is None else masks[order]))
        return merged
