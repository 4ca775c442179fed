"""J, F and statistics of stg.metrics.measures: hand-checked cases and agreement with the official code."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from stg.metrics.measures import (
    Boundary,
    boundary,
    db_statistics,
    decay_bin_ids,
    disk,
    f_from_precision_recall,
    f_measure,
    frame_scores,
    jaccard,
    precision_recall,
    seg2bmap,
    tolerance_radius,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from naive_davis_eval import naive_f, naive_j, official_seg2bmap  # noqa: E402


def mask_from(points: list[tuple[int, int]], shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for row, col in points:
        mask[row, col] = True
    return mask


def pr(gt: np.ndarray, res: np.ndarray, radius: int) -> tuple[float, float]:
    return precision_recall(boundary(gt), boundary(res), radius)


# ---------------------------------------------------------------- boundary map


def test_seg2bmap_single_pixel_marks_its_2x2_block_toward_the_origin() -> None:
    bmap = seg2bmap(mask_from([(2, 2)], (5, 5)))
    assert sorted(zip(*np.nonzero(bmap), strict=True)) == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_seg2bmap_last_row_and_column_rules() -> None:
    mask = np.array([[0, 0, 0],
                     [0, 0, 1],
                     [1, 1, 1]], dtype=bool)
    # Interior (rows/cols 0..1): 2x2 block not constant. Last row: only the right neighbour
    # counts (1^1=0, 1^1=0). Last column: only the one below (0^1=1, 1^1=0). Corner: 0.
    expected = np.array([[0, 1, 1],
                         [1, 1, 0],
                         [0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(seg2bmap(mask), expected)


def test_seg2bmap_last_row_object_and_full_mask() -> None:
    mask = np.zeros((3, 4), dtype=bool)
    mask[2, 1:3] = True
    # Row 1 sees row 2 through s/se; row 2 (last) only left/right changes: cols 0 (0^1) and 2 (1^0).
    expected = np.array([[0, 0, 0, 0],
                         [1, 1, 1, 0],
                         [1, 0, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(seg2bmap(mask), expected)
    assert not seg2bmap(np.ones((4, 5), dtype=bool)).any()


@pytest.mark.parametrize("seed", range(30))
def test_seg2bmap_and_cropped_boundary_equal_the_official_code(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 25, size=2))
    mask = rng.random(shape) < rng.choice([0.05, 0.3, 0.7, 0.97])
    full = official_seg2bmap(mask)
    np.testing.assert_array_equal(seg2bmap(mask), full)
    cropped = boundary(mask)
    if cropped is None:
        assert not mask.any()
        return
    placed = np.zeros(shape, dtype=bool)
    placed[cropped.top:cropped.bottom, cropped.left:cropped.right] = cropped.bmap
    np.testing.assert_array_equal(placed, full)
    assert cropped.count == int(full.sum())


# ---------------------------------------------------------------- radius and disk


def test_tolerance_radius() -> None:
    assert tolerance_radius(480, 854) == 8
    assert tolerance_radius(60, 90) == 1
    assert tolerance_radius(120, 200) == 2
    assert tolerance_radius(1080, 1920) == 18


def test_disk_is_x2_plus_y2_at_most_r2() -> None:
    np.testing.assert_array_equal(disk(1), np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8))
    assert int(disk(8).sum()) == 197
    skimage = pytest.importorskip("skimage.morphology")
    for radius in range(1, 20):
        np.testing.assert_array_equal(disk(radius), skimage.disk(radius).astype(np.uint8))


# ---------------------------------------------------------------- F, every branch


def test_f_empty_result_boundary_gives_precision_1_recall_0() -> None:
    gt = mask_from([(3, 3)], (10, 10))
    assert pr(gt, np.zeros((10, 10), bool), 1) == (1.0, 0.0)
    assert f_measure(gt, np.zeros((10, 10), bool), radius=1) == 0.0


def test_f_empty_gt_boundary_gives_precision_0_recall_1() -> None:
    res = mask_from([(3, 3)], (10, 10))
    assert pr(np.zeros((10, 10), bool), res, 1) == (0.0, 1.0)
    assert f_measure(np.zeros((10, 10), bool), res, radius=1) == 0.0


def test_f_both_empty_is_1_including_full_masks_whose_boundary_is_empty() -> None:
    empty = np.zeros((10, 10), bool)
    assert pr(empty, empty, 1) == (1.0, 1.0)
    assert f_measure(empty, empty) == 1.0
    full = np.ones((10, 10), bool)
    assert f_measure(full, full) == 1.0
    assert f_measure(full, empty) == 1.0  # both boundary maps are empty, as in the official code


def test_f_far_apart_tiny_masks_give_p_plus_r_zero() -> None:
    shape = (480, 854)
    gt = mask_from([(10, 10)], shape)
    res = mask_from([(400, 800)], shape)
    assert pr(gt, res, tolerance_radius(*shape)) == (0.0, 0.0)
    assert f_measure(gt, res) == 0.0
    assert f_from_precision_recall(0.0, 0.0) == 0.0


def test_f_partial_match_by_hand() -> None:
    # GT pixel (5,5): boundary {(4,4),(4,5),(5,4),(5,5)}. Result pixels (5,7),(6,7): boundary
    # {(4,6),(4,7),(5,6),(5,7),(6,6),(6,7)}. Radius 1 (plus-shaped disk): result pixels
    # (4,6),(5,6) touch the GT boundary -> P = 2/6; GT pixels (4,5),(5,5) -> R = 2/4.
    shape = (20, 20)
    gt = mask_from([(5, 5)], shape)
    res = mask_from([(5, 7), (6, 7)], shape)
    precision, recall = pr(gt, res, 1)
    assert (precision, recall) == (2 / 6, 2 / 4)
    expected = 2 * (2 / 6) * (2 / 4) / ((2 / 6) + (2 / 4))
    assert f_measure(gt, res, radius=1) == expected
    assert expected == pytest.approx(0.4)
    # Radius 2: only result pixel (6,7) is farther than 2 from the GT boundary (sqrt 5 from
    # (5,5)); every GT pixel is within 2 of the result boundary. P = 5/6, R = 1, F = 10/11.
    assert pr(gt, res, 2) == (5 / 6, 1.0)
    assert f_measure(gt, res, radius=2) == pytest.approx(10 / 11)


def test_f_diagonal_distance_uses_the_disk_not_the_square() -> None:
    # Closest boundary pixels (10,10) and (12,12) are sqrt(8) apart: inside the square of
    # radius 2 but outside its disk, so nothing matches; radius 3 matches just that pair.
    shape = (30, 30)
    gt = mask_from([(10, 10)], shape)
    res = mask_from([(13, 13)], shape)
    gt_b, res_b = boundary(gt), boundary(res)
    assert precision_recall(gt_b, res_b, 2) == (0.0, 0.0)
    assert precision_recall(gt_b, res_b, 3) == (1 / 4, 1 / 4)
    assert naive_f(gt, res, "scipy", bound_th=2) == f_measure(gt, res, radius=2)
    assert naive_f(gt, res, "scipy", bound_th=3) == f_measure(gt, res, radius=3)


# ---------------------------------------------------------------- J


def test_j_empty_union_is_1_and_hand_case() -> None:
    empty = np.zeros((4, 4), bool)
    assert jaccard(empty, empty) == 1.0
    gt = np.zeros((4, 4), bool)
    gt[0:2, 0:2] = True
    res = np.zeros((4, 4), bool)
    res[1:3, 1:3] = True
    assert jaccard(gt, res) == 1 / 7
    assert jaccard(gt, empty) == 0.0


# ---------------------------------------------------------------- agreement on random and structured masks


def structured_masks(shape: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    height, width = shape
    masks = []
    blob = rng.random(shape) < 0.5
    for _ in range(3):
        blob = (blob.astype(np.int8) + np.roll(blob, 1, 0) + np.roll(blob, 1, 1) + np.roll(blob, -1, 0)) >= 2
    masks.append(blob)
    rect = np.zeros(shape, bool)
    rect[5:height // 2, 7:width - 3] = True
    masks.append(rect)
    line = np.zeros(shape, bool)
    line[height // 3, :] = True
    line[:, width // 4] = True
    masks.append(line)
    border = np.zeros(shape, bool)
    border[-6:, -9:] = True
    border[:3, :] = True
    masks.append(border)
    masks.append(np.zeros(shape, bool))
    masks.append(np.ones(shape, bool))
    corner = np.zeros(shape, bool)
    corner[-1, -1] = True
    masks.append(corner)
    return masks


@pytest.mark.parametrize("shape", [(60, 90), (120, 200), (7, 5)])
def test_f_and_j_equal_the_official_code_on_structured_pairs(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    masks = structured_masks(shape, rng)
    shifted = [np.roll(mask, (2, -3), axis=(0, 1)) for mask in masks[:4]]
    candidates = masks + shifted
    for gt in candidates:
        for res in candidates:
            assert f_measure(gt, res) == naive_f(gt, res, "scipy")
            assert f_measure(gt, res) == naive_f(gt, res, "cv2")
            assert jaccard(gt, res) == naive_j(gt, res)


@pytest.mark.parametrize("seed", range(20))
def test_f_equals_the_official_code_on_random_blobs_and_radii(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    shape = (int(rng.integers(20, 80)), int(rng.integers(20, 80)))
    gt = rng.random(shape) < rng.uniform(0.01, 0.6)
    res = np.roll(gt, tuple(int(v) for v in rng.integers(-4, 5, 2)), axis=(0, 1)) ^ (rng.random(shape) < 0.05)
    for bound_th in (0.008, 0.05, 3):
        radius = tolerance_radius(*shape, bound_th=bound_th)
        assert f_measure(gt, res, radius=radius) == naive_f(gt, res, "scipy", bound_th=bound_th)


def test_frame_scores_multi_object_equals_per_object() -> None:
    rng = np.random.default_rng(7)
    gt = rng.integers(0, 4, (60, 90)).astype(np.uint8)
    res = np.roll(gt, 1, axis=1)
    res[res == 3] = 0  # object 3 missing from the result
    gt[gt == 2] = 0  # object 2 absent from the GT frame
    j_values, f_values = frame_scores(gt, res, 3)
    for index, label in enumerate((1, 2, 3)):
        assert j_values[index] == naive_j(gt == label, res == label)
        assert f_values[index] == naive_f(gt == label, res == label)
    assert j_values[2] == 0.0


def test_boundary_dataclass_extent() -> None:
    crop = Boundary(np.zeros((3, 4), bool), top=2, left=5, count=0)
    assert (crop.bottom, crop.right) == (5, 9)


# ---------------------------------------------------------------- statistics


def direct_ids(n: int) -> np.ndarray:
    return (np.round(np.linspace(1, n, 5) + 1e-10) - 1).astype(np.int64)


def direct_decay(values: np.ndarray) -> float:
    ids = direct_ids(len(values))
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
    return float(np.nanmean(bins[0]) - np.nanmean(bins[3]))


def test_decay_bins_match_the_formula_for_n_5_to_1000() -> None:
    rng = np.random.default_rng(3)
    wrapped = 0
    for n in range(5, 1001):
        ids = decay_bin_ids(n)
        np.testing.assert_array_equal(ids, direct_ids(n))
        assert ids[0] == 0 and ids[-1] == n - 1 and np.all(np.diff(ids) >= 0)
        values = rng.random(n)
        assert db_statistics(values)[2] == direct_decay(values)
        if n > 257:
            wrapped += int(not np.array_equal(ids.astype(np.uint8), ids))
    assert wrapped == 1000 - 257  # the official uint8 cast is wrong for every n > 257


def test_decay_for_short_sequences() -> None:
    assert db_statistics(np.array([0.7]))[2] == 0.0
    values = np.array([1.0, 0.9, 0.5, 0.2])
    assert db_statistics(values)[2] == direct_decay(values)


def test_mean_and_recall_by_hand_and_nan_aware() -> None:
    mean, recall, decay = db_statistics(np.array([1.0, 0.5, 0.6, 0.0, 0.9]))
    assert mean == pytest.approx(0.6)
    assert recall == pytest.approx(3 / 5)  # 0.5 is not > 0.5
    # bins for n=5: ids [0,1,2,3,4] -> b0 = x[0:2], b3 = x[3:5]
    assert decay == pytest.approx(0.75 - 0.45)
    mean, _, _ = db_statistics(np.array([1.0, np.nan, 0.0]))
    assert mean == 0.5


@pytest.mark.parametrize(("gt_point", "res_point"), [((100, 100), (103, 104)), ((0, 0), (5, 6)),
                                                     ((479, 853), (472, 849)), ((240, 0), (240, 8))])
def test_f_windows_smaller_than_the_disk(gt_point: tuple[int, int], res_point: tuple[int, int]) -> None:
    shape = (480, 854)  # radius 8: the 17x17 disk is larger than the few-pixel window
    gt, res = mask_from([gt_point], shape), mask_from([res_point], shape)
    assert f_measure(gt, res) == naive_f(gt, res, "scipy")
    assert f_measure(res, gt) == naive_f(res, gt, "cv2")


# ---------------------------------------------------------------- F matches without the disk dilation


def _dilated_matches(source: np.ndarray, target: np.ndarray, radius: int) -> int:
    """count(target & dilate(source, disk)): the official way, on the full map."""
    import cv2

    from stg.metrics.measures import disk

    return int(np.count_nonzero(target & cv2.dilate(source, disk(radius))))


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 8, 11, 16])
def test_disk_rectangles_union_is_the_disk(radius: int) -> None:
    from stg.metrics.measures import disk, disk_rectangles

    inner, rectangles = disk_rectangles(radius)
    union = np.zeros((2 * radius + 1, 2 * radius + 1), np.uint8)
    for half_width, half_height in rectangles:
        union[radius - half_height:radius + half_height + 1, radius - half_width:radius + half_width + 1] = 1
    assert np.array_equal(union, disk(radius))
    assert disk(radius)[radius - inner:radius + inner + 1, radius - inner:radius + inner + 1].all()


@pytest.mark.parametrize("seed", range(6))
def test_near_count_equals_disk_dilation(seed: int) -> None:
    from stg.metrics.measures import _near_count

    rng = np.random.default_rng(seed)
    for _ in range(150):
        height, width = (int(v) for v in rng.integers(1, 70, 2))
        density = rng.random() * 0.2
        source = (rng.random((height, width)) < density).astype(np.uint8)
        target = (rng.random((height, width)) < rng.random() * 0.3).astype(np.uint8)
        if rng.random() < 0.2:  # far-apart and edge cases: one pixel, empty, full
            source[:] = 0
            source[int(rng.integers(height)), int(rng.integers(width))] = 1
        if rng.random() < 0.1:
            target[:] = 1
        radius = int(rng.integers(0, 13))
        assert _near_count(source, target, radius) == _dilated_matches(source, target, radius)
