"""Segment backend registry: name -> backend class (see stg.registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stg.registry import Backend, build_backend

if TYPE_CHECKING:
    from stg.segment.base import SegmentBackend

BACKENDS = {
    "grabcut": Backend("stg.segment.grabcut:GrabCutSegmenter"),
    "deeplab": Backend("stg.segment.deeplab:DeepLabSegmenter", device=True),
}


def make_segment_backend(settings: dict[str, Any], device: str | None = None) -> SegmentBackend:
    """Build the configured backend; settings, weights, encoder and device fail here, before any work."""
    return build_backend("segment", "segment", BACKENDS, settings, device)
