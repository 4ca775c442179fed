"""Eqs. 2-8 of the paper against values computed by hand on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stg.graph.boxes import box_iou, box_iou_matrix, expand_box, mask_box
from stg.graph.labels import resolve_labels
from stg.graph.motion import NO_OBJECT, assign_proposals, graph_owners, predict_box
from stg.graph.selection import mask_iou, select, selection_scores
from stg.graph.spatial import cosine_matrix, edge_weights, spatial_update
from stg.graph.temporal import TemporalMemory, temporal_message, temporal_update


def box(cx, cy, w, h):
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float32)


# ---------------------------------------------------------------- boxes


def test_box_iou_by_hand():
    assert box_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert box_iou([0, 0, 2, 2], [2, 0, 4, 2]) == 0.0  # touching edges
    assert box_iou([0, 0, 2, 2], [np.nan] * 4) == 0.0
    np.testing.assert_allclose(box_iou_matrix([[0, 0, 2, 2]], [[0, 0, 2, 2], [0, 0, 4, 2]]), [[1.0, 0.5]])


def test_mask_box_is_tight_and_exclusive():
    mask = np.zeros((5, 6), bool)
    mask[1:3, 2:5] = True
    np.testing.assert_array_equal(mask_box(mask), [2, 1, 5, 3])
    assert np.isnan(mask_box(np.zeros((3, 3), bool))).all()


def test_expand_box_clips_to_frame():
    assert expand_box([10, 10, 20, 30], 0.1, 100, 100) == (9, 8, 21, 32)
    assert expand_box([0, 0, 10, 10], 0.5, 12, 12) == (0, 0, 12, 12)


# ---------------------------------------------------------------- Eq. 2


def test_motion_model_constant_velocity():
    history = [box(10 + 2 * r, 20 - r, 8, 6) for r in range(12)]  # c moves (+2, -1) per frame
    np.testing.assert_allclose(predict_box(history, n=10), box(10 + 2 * 12, 20 - 12, 8, 6), atol=1e-5)


def test_motion_model_averages_last_n_steps_by_hand():
    # centres x: 0, 1, 3, 6, 10 -> steps 1, 2, 3, 4; widths 2, 4, 6, 8, 10; heights all 4
    history = [box(x, 0, w, 4) for x, w in zip([0, 1, 3, 6, 10], [2, 4, 6, 8, 10], strict=True)]
    # n = 2: mean velocity (3 + 4) / 2 = 3.5 -> c = 13.5; size = mean of the last 2 widths = 9
    np.testing.assert_allclose(predict_box(history, n=2), box(13.5, 0, 9, 4), atol=1e-5)
    # n = 3: velocity (2 + 3 + 4) / 3 = 3 -> c = 13; width (6 + 8 + 10) / 3 = 8
    np.testing.assert_allclose(predict_box(history, n=3), box(13, 0, 8, 4), atol=1e-5)
    # size_n = 1 (the default graph setting): velocity over n = 3 steps, the last box's width 10
    np.testing.assert_allclose(predict_box(history, n=3, size_n=1), box(13, 0, 10, 4), atol=1e-5)
    with pytest.raises(ValueError, match="size_n"):
        predict_box(history, n=3, size_n=0)
    # the median of the last 3 steps (2, 3, 4) is 3, as their mean; a wrong selection's jump moves only the mean
    np.testing.assert_allclose(predict_box(history, n=3, size_n=1, velocity="median"), box(13, 0, 10, 4), atol=1e-5)
    jumped = [*history, box(40, 0, 10, 4), box(44, 0, 10, 4)]  # steps 3, 4, 30, 4: one jump of 30
    np.testing.assert_allclose(predict_box(jumped, n=4, size_n=1, velocity="median"), box(48, 0, 10, 4), atol=1e-5)
    np.testing.assert_allclose(predict_box(jumped, n=4, size_n=1), box(44 + 41 / 4, 0, 10, 4), atol=1e-5)


def test_motion_model_with_n_larger_than_history():
    history = [box(0, 0, 2, 2), box(3, 1, 4, 2), box(5, 5, 6, 2)]
    # n = 10 but only 2 steps: velocity ((3,1)-(0,0) + (5,5)-(3,1)) / 2 = (2.5, 2.5); size mean of 3: (4, 2)
    np.testing.assert_allclose(predict_box(history, n=10), box(7.5, 7.5, 4, 2), atol=1e-5)
    # a single box: no velocity, same box
    np.testing.assert_allclose(predict_box(history[:1], n=10), history[0], atol=1e-6)
    with pytest.raises(ValueError):
        predict_box([], n=10)


def test_assignment_by_best_iou_and_none_for_zero():
    predicted = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    proposals = np.array([[1, 1, 9, 9], [18, 0, 29, 10], [50, 50, 60, 60], [5, 0, 25, 10]], np.float32)
    # the last overlaps both equally (IoU 5*10/(100+200-50)=0.2 each): the lower object index wins
    np.testing.assert_array_equal(assign_proposals(proposals, predicted), [0, 1, NO_OBJECT, 0])
    assert assign_proposals(np.zeros((0, 4)), predicted).shape == (0,)


def test_spatial_graph_nodes_overlap_p_by_join_iou():
    predicted = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    proposals = np.array([[1, 1, 9, 9], [18, 0, 29, 10], [50, 50, 60, 60], [5, 0, 25, 10]], np.float32)
    owner = assign_proposals(proposals, predicted)
    # IoU with their object's p: 0.64, 10*10/(110+100-90)... [18,0,29,10] vs [20,0,30,10]: 90/120 = 0.75; last 0.2
    np.testing.assert_array_equal(graph_owners(owner, proposals, predicted, 0.3), [0, 1, NO_OBJECT, NO_OBJECT])
    np.testing.assert_array_equal(graph_owners(owner, proposals, predicted, 0.7), [NO_OBJECT, 1, NO_OBJECT, NO_OBJECT])
    np.testing.assert_array_equal(graph_owners(owner, proposals, predicted, 0.0), owner)


# ---------------------------------------------------------------- Eqs. 3-5


def three_nodes():
    features = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [10, 10, 12, 12]], np.float32)
    states = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)  # (N, D): tiny "masks"
    return features, boxes, states


def test_edge_weights_by_hand():
    features, boxes, _ = three_nodes()
    c = 1 / np.sqrt(2)
    expected = np.array([
        [0, 0.7 * c + 0.3 / 7, 0],
        [0.7 * c + 0.3 / 7, 0, 0.7 * c],
        [0, 0.7 * c, 0],
    ])
    np.testing.assert_allclose(edge_weights(features, boxes, 0.7, 0.3), expected, atol=1e-12)
    np.testing.assert_allclose(cosine_matrix(np.zeros((2, 3))), np.zeros((2, 2)))


def test_spatial_update_one_and_two_iterations_by_hand():
    features, boxes, states = three_nodes()
    w = edge_weights(features, boxes, 0.7, 0.3)
    a, b = w[0, 1], w[1, 2]
    # Eq. 5: h_v' = (h_v + sum_u W_vu h_u) / (1 + sum_u W_vu)
    one = np.array([
        (states[0] + a * states[1]) / (1 + a),
        (states[1] + a * states[0] + b * states[2]) / (1 + a + b),
        (states[2] + b * states[1]) / (1 + b),
    ])
    np.testing.assert_allclose(spatial_update(states, w, 1), one, atol=1e-6)
    two = np.array([
        (one[0] + a * one[1]) / (1 + a),
        (one[1] + a * one[0] + b * one[2]) / (1 + a + b),
        (one[2] + b * one[1]) / (1 + b),
    ])
    np.testing.assert_allclose(spatial_update(states, w, 2), two, atol=1e-6)
    np.testing.assert_array_equal(spatial_update(states, w, 0), states)


def test_spatial_update_keeps_image_shape_and_single_node():
    masks = np.random.default_rng(0).random((2, 4, 5)).astype(np.float32)
    w = np.array([[0, 0.5], [0.5, 0]])
    out = spatial_update(masks, w, 1)
    assert out.shape == (2, 4, 5)
    np.testing.assert_allclose(out[0], (masks[0] + 0.5 * masks[1]) / 1.5, atol=1e-6)
    single = spatial_update(masks[:1], np.zeros((1, 1)), 2)
    np.testing.assert_array_equal(single, masks[:1])


# ---------------------------------------------------------------- Eq. 6


def test_selection_scores_by_hand():
    q = np.zeros((6, 6), bool)
    q[1:4, 1:4] = True                                   # 9 pixels, box [1, 1, 4, 4]
    m0 = np.zeros((6, 6), bool)
    m0[1:4, 1:3] = True                                  # 6 pixels inside q, box [1, 1, 3, 4]
    m1 = np.zeros((6, 6), bool)
    m1[2:5, 2:5] = True                                  # 9 pixels, 4 shared with q, box [2, 2, 5, 5]
    p = np.array([1, 1, 4, 4], np.float32)
    scores = selection_scores(np.stack([m0, m1]), p, q, 0.4, 0.6)
    expected = [0.4 * 6 / 9 + 0.6 * 6 / 9, 0.4 * 4 / 14 + 0.6 * 4 / 14]
    np.testing.assert_allclose(scores, expected)
    assert select(scores) == 0
    assert mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 0.0


def test_selection_ties_go_to_higher_detection_score_then_lower_index():
    scores = np.array([0.5, 0.8, 0.8, 0.8])
    assert select(scores) == 1
    assert select(scores, np.array([0.9, 0.3, 0.7, 0.7])) == 2
    assert select(scores, np.array([0.9, 0.6, 0.2, 0.6])) == 1
    with pytest.raises(ValueError):
        select(np.array([]))


# ---------------------------------------------------------------- Eqs. 7-8


def explicit_message(query, keys, values):
    """Eq. 7 written as the paper's loops."""
    channels, height, width = query.shape
    out = np.zeros((height, width))
    for i in range(height * width):
        qi = query.reshape(channels, -1)[:, i]
        for r in range(keys.shape[0]):
            kr = keys[r].reshape(channels, -1)
            hr = values[r].reshape(-1)
            numerator = sum(np.exp(qi @ kr[:, j]) * hr[j] for j in range(kr.shape[1]))
            denominator = sum(np.exp(qi @ kr[:, j]) for j in range(kr.shape[1]))
            out.flat[i] += numerator / denominator
    return out


def test_temporal_message_matches_explicit_loops():
    rng = np.random.default_rng(1)
    query = rng.normal(size=(3, 2, 3))
    keys = rng.normal(size=(4, 3, 2, 2))
    values = rng.random(size=(4, 2, 2))
    message = temporal_message(torch.tensor(query), torch.tensor(keys), torch.tensor(values))
    np.testing.assert_allclose(message.numpy(), explicit_message(query, keys, values), rtol=1e-10)
    scaled = temporal_message(torch.tensor(query), torch.tensor(keys), torch.tensor(values), temperature=2.0)
    np.testing.assert_allclose(scaled.numpy(), explicit_message(query / 2.0, keys, values), rtol=1e-10)


def test_temporal_message_moves_value_patches_of_a_coarse_key_grid():
    """Key maps at stride s = 2: location j's value is its 2x2 patch; the message is at value resolution."""
    rng = np.random.default_rng(2)
    query = rng.normal(size=(3, 2, 2))
    keys = rng.normal(size=(2, 3, 2, 2))
    values = rng.random(size=(2, 4, 4))
    message = temporal_message(torch.tensor(query), torch.tensor(keys), torch.tensor(values)).numpy()
    assert message.shape == (4, 4)
    expected = np.zeros((4, 4))
    for i in range(4):                                     # query location (row, col) = divmod(i, 2)
        qi = query.reshape(3, -1)[:, i]
        for r in range(2):
            weights = np.exp(qi @ keys[r].reshape(3, -1))
            weights /= weights.sum()
            for j in range(4):
                (a, b), (c, d) = divmod(i, 2), divmod(j, 2)
                expected[2 * a:2 * a + 2, 2 * b:2 * b + 2] += weights[j] * values[r, 2 * c:2 * c + 2, 2 * d:2 * d + 2]
    np.testing.assert_allclose(message, expected, rtol=1e-10)
    with pytest.raises(ValueError, match="patch"):
        temporal_message(torch.tensor(query), torch.tensor(keys), torch.tensor(values[:, :3]))


def test_temporal_message_by_hand_and_update():
    # one memory frame with two locations: the query matches location 0 with logit 1, location 1 with 0
    query = torch.tensor([[[1.0]]])                       # C=1, 1x1
    keys = torch.tensor([[[[1.0, 0.0]]]])                 # R=1, C=1, 1x2
    values = torch.tensor([[[1.0, 0.0]]])
    e = np.e
    assert temporal_message(query, keys, values).item() == pytest.approx(e / (e + 1))
    # Eq. 8 at t = 3 with all three earlier frames in memory: eta = 1/4
    assert temporal_update(np.float32(1.0), np.float32(2.0), 3) == pytest.approx(0.75)
    assert temporal_message(query, keys[:0], values[:0]).item() == 0.0


def test_memory_policies():
    def entry(v):
        return torch.full((2, 1, 1), float(v)), torch.full((1, 1), float(v))

    everything = TemporalMemory("all")
    window = TemporalMemory("first_and_window", window=2)
    for frame in range(6):
        everything.add(frame, *entry(frame))
        window.add(frame, *entry(frame))
    assert everything.frames() == [0, 1, 2, 3, 4, 5]
    assert window.frames() == [0, 4, 5]
    keys, values = window.stacked()
    assert values.flatten().tolist() == [0.0, 4.0, 5.0]
    assert keys[:, 0, 0, 0].tolist() == [0.0, 4.0, 5.0]
    assert everything.stacked()[1].flatten().tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError):
        TemporalMemory("recent")


# ---------------------------------------------------------------- label map


def test_overlaps_go_to_higher_soft_score():
    masks = np.array([[[1, 1, 0]], [[0, 1, 1]]], bool)
    scores = np.array([[[0.9, 0.4, 0.0]], [[0.0, 0.6, 0.3]]], np.float32)
    np.testing.assert_array_equal(resolve_labels(masks, scores), [[1, 2, 2]])
    np.testing.assert_array_equal(resolve_labels(np.zeros((2, 1, 2), bool), np.zeros((2, 1, 2))), [[0, 0]])


def test_part_boxes_stay_out_of_the_spatial_graph():
    """Eqs. 4-5 average the nodes' masks: proposals covering a corner of the object would pull the whole object's
    mask below thr; with join_iou they are not nodes and the whole-object proposal comes through unchanged."""
    from stg.features.mobilenet import MobileNetV2Features
    from stg.graph.settings import GraphSettings
    from stg.graph.tracker import GraphTracker, Proposals

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    truth = np.zeros((64, 64), bool)
    truth[10:40, 10:40] = True
    boxes = [[10, 10, 40, 40], [10, 10, 20, 20], [30, 30, 40, 40], [10, 30, 20, 40], [30, 10, 40, 20]]
    masks = np.zeros((len(boxes), 64, 64), np.float32)
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        masks[index, y0:y1, x0:x1] = 1.0
    proposals = Proposals(np.array(boxes, np.float32), np.ones(len(boxes), np.float32), masks)
    features = MobileNetV2Features(node_size=64, device="cpu")
    results = {}
    for join in (0.0, 0.3):
        settings = GraphSettings.from_dict({"temporal": False, "motion": False, "join_iou": join,
                                            "proposals": "cached"})
        tracker = GraphTracker(settings, features, 1)
        tracker.start(image, truth.astype(np.uint8))
        results[join] = tracker.step(1, image, proposals, truth[None].astype(np.float32))
    assert results[0.3].nodes[0] == 1 and results[0.3].chosen[0] == 0
    np.testing.assert_array_equal(results[0.3].labels == 1, truth)
    assert results[0.0].nodes[0] == len(boxes)
    assert results[0.0].no_proposal[0]  # every averaged node fell below thr: only the warped Q was left


def test_greedy_selection_takes_only_proposals_that_overlap_p_by_join_iou():
    """With the spatial graph off, join_iou limits Eq. 6's candidates: a proposal whose box overlaps p by less is
    never chosen, even when its mask would score best (here: a small box whose mask happens to cover Q)."""
    from stg.graph.settings import GraphSettings
    from stg.graph.tracker import GraphTracker, Proposals

    image = np.zeros((64, 64, 3), np.uint8)
    truth = np.zeros((64, 64), bool)
    truth[10:40, 10:40] = True
    boxes = np.array([[12, 12, 42, 42], [10, 10, 16, 16]], np.float32)  # IoU with p: 0.78 and 0.04
    masks = np.zeros((2, 64, 64), np.float32)
    masks[0, 12:42, 12:42] = 1.0
    masks[1] = truth  # a perfect mask from a box that hardly overlaps p
    proposals = Proposals(boxes, np.ones(2, np.float32), masks)
    chosen = {}
    for join in (0.0, 0.3):
        settings = GraphSettings.from_dict({"temporal": False, "motion": False, "spatial": False, "join_iou": join,
                                            "proposals": "cached"})
        tracker = GraphTracker(settings, None, 1)
        tracker.start(image, truth.astype(np.uint8))
        result = tracker.step(1, image, proposals, truth[None].astype(np.float32))
        chosen[join] = (int(result.chosen[0]), int(result.nodes[0]))
    assert chosen[0.0] == (1, 2)
    assert chosen[0.3] == (0, 1)


def test_motion_source_flow_predicts_the_box_of_q_and_falls_back_to_eq2_where_q_is_empty():
    from stg.graph.settings import GraphSettings
    from stg.graph.tracker import GraphTracker

    image = np.zeros((64, 64, 3), np.uint8)
    first = np.zeros((64, 64), np.uint8)
    first[10:30, 10:20] = 1
    warped = np.zeros((1, 64, 64), np.float32)
    warped[0, 14:34, 20:30] = 0.9  # the previous result moved by the flow: 4 down, 10 right
    predicted = {}
    for source in ("flow", "boxes"):
        settings = GraphSettings.from_dict({"temporal": False, "spatial": False, "proposals": "cached",
                                            "motion_source": source})
        tracker = GraphTracker(settings, None, 1)
        tracker.start(image, first)
        predicted[source] = tracker.predicted_boxes(warped)[0]
        predicted[source + " without Q"] = tracker.predicted_boxes(np.zeros_like(warped))[0]
    np.testing.assert_array_equal(predicted["flow"], [20, 14, 30, 34])
    np.testing.assert_array_equal(predicted["boxes"], [10, 10, 20, 30])  # one box: Eq. 2 keeps it
    np.testing.assert_array_equal(predicted["flow without Q"], predicted["boxes"])



def test_flow_shifted_box_moves_the_previous_box_by_the_centroid_shift():
    from stg.graph.motion import flow_shifted_box, mask_centroid

    previous = np.zeros((64, 64), bool)
    previous[10:30, 10:20] = True                      # centroid (15, 20)
    warped = np.zeros((64, 64), bool)
    warped[14:34, 20:30] = warped[14:34, 30:40] = True  # moved 10 right, 4 down, and spilled 10 further right
    np.testing.assert_allclose(mask_centroid(previous), [15.0, 20.0])
    np.testing.assert_allclose(mask_centroid(warped), [30.0, 24.0])
    box = flow_shifted_box(np.array([10, 10, 20, 30], np.float32), previous, warped)
    np.testing.assert_allclose(box, [25, 14, 35, 34])  # the centroid's step (15, 4); the previous box's size
    np.testing.assert_array_equal(flow_shifted_box(np.array([1, 2, 3, 4]), previous, np.zeros_like(warped)),
                                  [1, 2, 3, 4])
    assert np.isnan(mask_centroid(np.zeros((4, 4), bool))).all()


def test_motion_source_flow_shift_follows_the_mask_q_warps_from_frame_to_frame():
    from stg.graph.settings import GraphSettings
    from stg.graph.tracker import GraphTracker, Proposals

    image = np.zeros((64, 64, 3), np.uint8)
    first = np.zeros((64, 64), np.uint8)
    first[10:30, 10:20] = 1
    warped = np.zeros((1, 64, 64), np.float32)
    warped[0, 14:34, 20:40] = 0.9  # moved (10, 4) and spilled 10 px right: B(Q) 20 wide, centroid step (15, 4)
    settings = GraphSettings.from_dict({"temporal": False, "spatial": False, "proposals": "cached",
                                        "motion_source": "flow_shift"})
    tracker = GraphTracker(settings, None, 1)
    tracker.start(image, first)
    np.testing.assert_allclose(tracker.predicted_boxes(warped)[0], [25, 14, 35, 34])
    np.testing.assert_array_equal(tracker.predicted_boxes(np.zeros_like(warped))[0], [10, 10, 20, 30])  # Eq. 2
    none = Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 64, 64), np.float32))
    result = tracker.step(1, image, none, warped)  # no proposal: the result is Q, which the next Q warps
    np.testing.assert_array_equal(result.labels, (warped[0] > 0.5).astype(np.uint8))
    moved = np.roll(warped, (3, -5), axis=(1, 2))  # the next warp moves it 5 left, 3 down
    np.testing.assert_allclose(tracker.predicted_boxes(moved)[0], [15, 17, 35, 37])  # B(result) + (-5, 3)

# ---------------------------------------------------------------- detached fragments (min_fragment)

def test_drop_fragments_keeps_components_of_comparable_size():
    from stg.graph.fragments import drop_fragments

    mask = np.zeros((40, 60), bool)
    mask[5:25, 5:25] = True    # the object: 400 px
    mask[5:25, 27:37] = True   # the other side of an occluder: 200 px (50 %)
    mask[30:35, 50:55] = True  # a leak: 25 px (6 %)
    np.testing.assert_array_equal(drop_fragments(mask, 0.0), mask)
    kept = drop_fragments(mask, 0.1)
    expected = mask.copy()
    expected[30:35, 50:55] = False
    np.testing.assert_array_equal(kept, expected)
    only_largest = drop_fragments(mask, 0.6)
    assert only_largest.sum() == 400 and only_largest[5:25, 5:25].all()
    diagonal = np.eye(6, dtype=bool)  # 8-connected: one component
    np.testing.assert_array_equal(drop_fragments(diagonal, 0.9), diagonal)
    assert not drop_fragments(np.zeros((4, 4), bool), 0.5).any()


def test_tracker_drops_a_detached_leak_before_it_becomes_q():
    """The chosen proposal's mask holds the object and a small far blob: min_fragment removes the blob from the result
    (and so from the next frame's p and Q); 0 keeps the mask as selected."""
    from stg.graph.settings import GraphSettings
    from stg.graph.tracker import GraphTracker, Proposals

    image = np.zeros((64, 64, 3), np.uint8)
    truth = np.zeros((64, 64), bool)
    truth[10:40, 10:30] = True
    leaky = truth.copy()
    leaky[50:54, 50:54] = True
    proposals = Proposals(np.array([[10, 10, 54, 54]], np.float32), np.ones(1, np.float32),
                          leaky[None].astype(np.float32))
    results = {}
    for fraction in (0.0, 0.1):
        settings = GraphSettings.from_dict({"temporal": False, "spatial": False, "proposals": "cached",
                                            "min_fragment": fraction})
        tracker = GraphTracker(settings, None, 1)
        tracker.start(image, truth.astype(np.uint8))
        results[fraction] = tracker.step(1, image, proposals, truth[None].astype(np.float32))
    np.testing.assert_array_equal(results[0.0].labels == 1, leaky)
    np.testing.assert_array_equal(results[0.1].labels == 1, truth)
    np.testing.assert_array_equal(results[0.1].boxes[0], [10, 10, 30, 40])


def test_cut_weak_edges_by_hand_and_its_effect_on_eqs_4_5():
    from stg.graph.spatial import cut_weak_edges

    weights = np.array([[0.0, 0.8, 0.3], [0.8, 0.0, 0.5], [0.3, 0.5, 0.0]])
    np.testing.assert_array_equal(cut_weak_edges(weights, 0.0), weights)
    np.testing.assert_array_equal(cut_weak_edges(weights, 0.5), [[0, 0.8, 0], [0.8, 0, 0.5], [0, 0.5, 0]])
    states = np.array([[1.0], [0.0], [0.0]])
    # node 0: (1 + 0.8 * 0) / 1.8; node 1: (0 + 0.8 * 1 + 0.5 * 0) / 2.3; node 2 no longer hears node 0
    updated = spatial_update(states, cut_weak_edges(weights, 0.5), 1)
    np.testing.assert_allclose(updated[:, 0], [1 / 1.8, 0.8 / 2.3, 0.0], rtol=1e-6)


def test_node_support_by_hand_and_a_supported_update_adds_no_neighbour_pixels():
    from stg.graph.spatial import node_support

    states = np.zeros((2, 4, 5), np.float32)
    states[0, 1, 1], states[0, 2, 3] = 0.9, 0.2    # tight node: two pixels, box rows 1-2, columns 1-3
    states[1, 0:4, 0:5] = 0.8                      # near-duplicate spanning the whole image (a leak onto background)
    assert node_support(states, "image") is None
    mask = node_support(states, "mask")
    np.testing.assert_array_equal(mask[0], states[0] > 0)
    assert mask[1].all()
    boxed = node_support(states, "box")
    expected = np.zeros((4, 5), bool)
    expected[1:3, 1:4] = True
    np.testing.assert_array_equal(boxed[0], expected)
    with pytest.raises(ValueError, match="spatial support"):
        node_support(states, "crop")

    weights = np.array([[0.0, 1.0], [1.0, 0.0]])
    free = spatial_update(states, weights, 1)
    # by hand, Eq. 5 with one neighbour of weight 1: h' = (h_v + h_u) / 2
    np.testing.assert_allclose(free[0], (states[0] + states[1]) / 2, atol=1e-6)
    for support in ("mask", "box"):
        inside = node_support(states, support)
        confined = spatial_update(states, weights, 2, inside)
        assert not confined[0][~inside[0]].any()               # nothing added outside the tight node's support
        once = spatial_update(states, weights, 1, inside)
        np.testing.assert_allclose(once[0][inside[0]], free[0][inside[0]], atol=1e-6)  # inside: Eq. 5 unchanged
        np.testing.assert_allclose(once[1], free[1], atol=1e-6)  # the wide node's support is the whole image


def test_temporal_threshold_binarises_eq_8_only():
    """temporal_threshold is thr of the temporal graph's result; the proposals keep `threshold` (null: one thr)."""
    from stg.features.mobilenet import MobileNetV2Features
    from stg.graph.settings import GraphSettings
    from stg.graph.tracker import GraphTracker

    image = np.full((64, 64, 3), 128, np.uint8)
    truth = np.zeros((64, 64), bool)
    truth[20:40, 20:40] = True
    features = MobileNetV2Features(node_size=64, device="cpu")
    results = {}
    for temporal_threshold in (None, 0.1):
        settings = GraphSettings.from_dict({"spatial": False, "motion": False, "proposals": "cached",
                                            "temporal_size": [64, 64], "threshold": 0.9,
                                            "temporal_threshold": temporal_threshold})
        tracker = GraphTracker(settings, features, 1)
        tracker.start(image, truth.astype(np.uint8))
        results[temporal_threshold] = tracker._temporal(image, 0, truth)[:2]
    state, mask = results[None]
    np.testing.assert_array_equal(mask, state > 0.9)
    np.testing.assert_array_equal(results[0.1][0], state)  # the same Eq. 8 state, binarised at its own thr
    np.testing.assert_array_equal(results[0.1][1], state > 0.1)
    assert results[0.1][1].sum() > mask.sum()


def test_silence_duplicates_by_hand_and_through_eq_5():
    from stg.graph.spatial import silence_duplicates

    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [20, 20, 30, 30]], np.float32)  # 1 duplicates 0 (IoU 0.91)
    scores = np.array([0.5, 0.9, 0.7], np.float32)
    weights = np.array([[0.0, 0.9, 0.2], [0.9, 0.0, 0.3], [0.2, 0.3, 0.0]])
    np.testing.assert_array_equal(silence_duplicates(weights, boxes, scores, 0.0), weights)
    # NMS in score order keeps 1 (0.9) and 2 (0.7), suppresses 0: its column (edges out of it) goes
    np.testing.assert_array_equal(silence_duplicates(weights, boxes, scores, 0.6),
                                  [[0.0, 0.9, 0.2], [0.0, 0.0, 0.3], [0.0, 0.3, 0.0]])
    np.testing.assert_array_equal(silence_duplicates(weights, boxes, scores, 0.95), weights)  # nothing suppressed
    states = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    updated = spatial_update(states, silence_duplicates(weights, boxes, scores, 0.6), 1)
    # node 2 hears node 1 only: (h_2 + 0.3 h_1) / 1.3; node 0 still receives: (h_0 + 0.9 h_1 + 0.2 h_2) / 2.1
    np.testing.assert_allclose(updated[2], [0.3 / 1.3, 1 / 1.3], atol=1e-6)
    np.testing.assert_allclose(updated[0], [1.9 / 2.1, 0.2 / 2.1], atol=1e-6)
