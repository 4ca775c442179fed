"""benchmarks/motion_selection_probe.py: its Eq. 6 pick under a given p is the tracker's own pick."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import motion_selection_probe as probe  # noqa: E402

from stg.graph.boxes import mask_box  # noqa: E402
from stg.graph.settings import GraphSettings  # noqa: E402
from stg.graph.tracker import GraphTracker, Proposals  # noqa: E402


def rectangle(x0: int, y0: int, x1: int, y1: int, size: int = 40) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    mask[y0:y1, x0:x1] = 1.0
    return mask


def greedy(motion: bool) -> GraphSettings:
    return GraphSettings.from_dict({"motion": motion, "spatial": False, "temporal": False, "lambda1": 0.5,
                                    "lambda2": 0.5, "threshold": 0.5, "min_fragment": 0.25, "join_iou": 0.3})


@pytest.fixture
def frame():
    """The object was at x 2-12 (previous box); the flow moved it to x 14-24 (Q). Proposal 0 sits where it was,
    proposal 1 where Q is, proposal 2 far away."""
    masks = np.stack([rectangle(2, 10, 12, 20), rectangle(14, 10, 24, 20), rectangle(30, 30, 38, 38)])
    proposals = Proposals(np.stack([mask_box(m > 0.5) for m in masks]), np.array([0.9, 0.8, 0.7], np.float32),
                          masks)
    warped = rectangle(14, 10, 24, 20)[None]
    first = (rectangle(2, 10, 12, 20) > 0.5).astype(np.uint8)
    return proposals, warped, first


@pytest.mark.parametrize("motion", [False, True])
def test_pick_is_the_trackers(frame, motion):
    proposals, warped, first = frame
    settings = greedy(motion)
    tracker = GraphTracker(settings, None, 1)
    tracker.start(np.zeros((40, 40, 3), np.uint8), first)
    p = tracker.predicted_boxes(warped)[0]
    chosen = probe.pick(proposals, p, warped[0] >= settings.q_threshold, settings)
    result = tracker.step(1, np.zeros((40, 40, 3), np.uint8), proposals, warped)
    np.testing.assert_array_equal(chosen, result.labels == 1)


def test_the_two_ps_gate_and_pick_differently(frame):
    proposals, warped, first = frame
    settings = greedy(False)
    previous_box, flow_box = mask_box(first > 0), mask_box(warped[0] >= 0.5)
    assert list(probe.candidates(proposals, previous_box, settings.join_iou)) == [0]
    assert list(probe.candidates(proposals, flow_box, settings.join_iou)) == [1]
    q = warped[0] >= 0.5
    np.testing.assert_array_equal(probe.pick(proposals, previous_box, q, settings), proposals.masks[0] > 0.5)
    np.testing.assert_array_equal(probe.pick(proposals, flow_box, q, settings), proposals.masks[1] > 0.5)
    far = np.array([100, 100, 110, 110], np.float32)
    assert probe.pick(proposals, far, q, settings) is None
