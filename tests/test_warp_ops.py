"""Warping operations on tiny arrays with known answers."""

import numpy as np
import pytest

from stg.warp.ops import backward_warp, occlusion_mask, one_hot, priors_to_labels, quantise


def test_backward_warp_integer_shift_moves_mask():
    mask = np.zeros((10, 12), np.float32)
    mask[3:6, 2:5] = 1
    flow = np.zeros((10, 12, 2), np.float32)
    flow[..., 0] = -2  # each target pixel reads 2 columns to its left: content moves right by 2
    warped = backward_warp(mask, flow)
    expected = np.zeros_like(mask)
    expected[3:6, 4:7] = 1
    np.testing.assert_array_equal(warped, expected)


def test_backward_warp_bilinear_half_pixel():
    values = np.zeros((1, 4, 4), np.float32)
    values[0, :, 1] = 1
    flow = np.zeros((4, 4, 2), np.float32)
    flow[..., 0] = 0.5
    warped = backward_warp(values, flow)
    np.testing.assert_allclose(warped[0, 1, :3], [0.5, 0.5, 0.0], atol=1e-6)


def test_backward_warp_outside_frame_is_zero():
    values = np.ones((5, 5), np.float32)
    flow = np.zeros((5, 5, 2), np.float32)
    flow[..., 1] = 10
    assert backward_warp(values, flow).max() == 0


def test_occlusion_consistent_translation_and_outside():
    height, width = 8, 10
    backward = np.zeros((height, width, 2), np.float32)
    backward[..., 0] = -1
    forward = np.zeros((height, width, 2), np.float32)
    forward[..., 0] = 1
    occluded = occlusion_mask(backward, forward)
    assert not occluded[:, 1:].any()
    assert occluded[:, 0].all()  # maps to column -1: outside the source frame


def test_occlusion_inconsistent_flow_detected():
    backward = np.zeros((6, 6, 2), np.float32)
    forward = np.zeros((6, 6, 2), np.float32)
    backward[2, 2] = (0, 0)
    forward[2, 2] = (3, 0)  # forward says the pixel moved, backward says it stayed
    occluded = occlusion_mask(backward, forward, alpha=0.01, beta=0.5)
    assert occluded[2, 2]
    assert occluded.sum() == 1


def test_one_hot_ignores_void_and_background():
    labels = np.array([[0, 1, 2], [255, 2, 1]], np.uint8)
    masks = one_hot(labels, 2)
    assert masks.shape == (2, 2, 3)
    np.testing.assert_array_equal(masks[0], [[0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(masks[1], [[0, 0, 1], [0, 1, 0]])


def test_priors_to_labels_argmax_and_threshold():
    priors = np.array([[[0.6, 0.4, 0.9]], [[0.7, 0.1, 0.9]]], np.float32)
    labels = priors_to_labels(priors, 0.5)
    np.testing.assert_array_equal(labels, [[2, 0, 1]])  # tie goes to the lower object id


def test_priors_to_labels_no_objects():
    assert priors_to_labels(np.zeros((0, 2, 3), np.float32)).shape == (2, 3)


@pytest.mark.parametrize("value, expected", [(0.0, 0), (1.0, 255), (0.5, 128), (1.2, 255), (-0.1, 0)])
def test_quantise(value, expected):
    assert quantise(np.array([value], np.float32))[0] == expected
