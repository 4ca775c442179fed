"""Segment backend registry: settings dict -> backend object, validated at job start."""

from __future__ import annotations

import inspect
from typing import Any

from stg.errors import InputError
from stg.segment.base import SegmentBackend

BACKENDS = ("grabcut", "deeplab")
_NOT_SETTINGS = {"self", "name", "stats", "device", "require_weights"}


def _options(cls: type, backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown keys by name (a typo must not fall back to a default silently)."""
    allowed = set(inspect.signature(cls).parameters) - _NOT_SETTINGS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InputError(f"stages.segment.{backend}", f"unknown setting(s) {', '.join(unknown)} "
                         f"(allowed: {', '.join(sorted(allowed))})")
    return options


def make_segment_backend(settings: dict[str, Any]) -> SegmentBackend:
    """Build the configured backend; weights, encoder and device problems fail here, before any work."""
    backend = settings.get("backend", "grabcut")
    if backend == "grabcut":
        from stg.segment.grabcut import GrabCutSegmenter

        return GrabCutSegmenter(**_options(GrabCutSegmenter, backend, settings.get("grabcut", {})))
    if backend == "deeplab":
        from stg.segment.deeplab import DeepLabSegmenter

        options = _options(DeepLabSegmenter, backend, settings.get("deeplab", {}))
        return DeepLabSegmenter(device=settings.get("device", "auto"), **options)
    raise InputError("stages.segment.backend",
                     f"unknown segment backend '{backend}' (expected {' or '.join(BACKENDS)})")
