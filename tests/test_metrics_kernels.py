"""The compiled metrics kernels (stg/metrics/_kernels.c) against the numpy path, cv2 and PIL.

They skip, saying why, where the package was installed without a C compiler (the metrics then run on
numpy alone); CI sets STG_REQUIRE_METRICS_KERNEL=1, which turns a missing kernel into a failure.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from stg.metrics import measures
from stg.metrics.decode import fast_png_labels
from stg.metrics.measures import frame_scores, frame_scores_compiled, frame_scores_numpy

if measures._kernels is None:
    if os.environ.get("STG_REQUIRE_METRICS_KERNEL") == "1":
        pytest.fail("STG_REQUIRE_METRICS_KERNEL=1 but stg.metrics._kernels is not built", pytrace=False)
    pytest.skip("stg.metrics._kernels is not built (no C compiler at install time)", allow_module_level=True)

from stg.metrics import _kernels  # noqa: E402


def blobs(rng: np.random.Generator, shape: tuple[int, int], labels: int) -> np.ndarray:
    """Label map of coarse blocks (objects with long boundaries) or salt noise, labels 0..labels."""
    height, width = shape
    if rng.random() < 0.5:
        coarse = rng.integers(0, labels + 1, (max(1, height // 7) + 1, max(1, width // 7) + 1)).astype(np.uint8)
        return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_NEAREST)
    return rng.integers(0, labels + 1, shape).astype(np.uint8)


@pytest.mark.parametrize("seed", range(30))
def test_compiled_counts_equal_numpy_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(20):
        shape = (int(rng.integers(1, 90)), int(rng.integers(1, 150)))
        num_objects = int(rng.choice([1, 2, 5, 12]))
        gt = blobs(rng, shape, num_objects + 2)  # labels above K are no object
        res = blobs(rng, shape, num_objects)
        radius = int(rng.integers(0, 14))
        compiled = frame_scores_compiled(gt, res, num_objects, radius)
        reference = frame_scores_numpy(gt, res, num_objects, radius)
        np.testing.assert_array_equal(compiled[0], reference[0])
        np.testing.assert_array_equal(compiled[1], reference[1])


def test_compiled_matching_equals_cv2_dilation() -> None:
    """The bit-parallel disk matching counts exactly what cv2.dilate with the disk counts (the official way)."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        shape = (int(rng.integers(2, 70)), int(rng.integers(2, 200)))  # wider than 64: several words per row
        gt, res = blobs(rng, shape, 1), blobs(rng, shape, 1)
        radius = int(rng.integers(1, 12))
        (_, _, _, n_gt, n_res, res_matched, gt_matched), = _kernels.object_counts(gt, res, shape[1], shape[0], 1,
                                                                                    radius)
        gt_map = measures.seg2bmap(gt == 1).astype(np.uint8)
        res_map = measures.seg2bmap(res == 1).astype(np.uint8)
        assert (n_gt, n_res) == (int(gt_map.sum()), int(res_map.sum()))
        if n_gt and n_res:
            disk = measures.disk(radius)
            assert res_matched == int(np.count_nonzero(res_map & cv2.dilate(gt_map, disk)))
            assert gt_matched == int(np.count_nonzero(gt_map & cv2.dilate(res_map, disk)))


def test_frame_scores_uses_the_kernel_and_keeps_numpy_for_what_it_cannot_take(monkeypatch: pytest.MonkeyPatch
                                                                               ) -> None:
    calls = []
    monkeypatch.setattr(measures, "frame_scores_compiled", lambda *args: calls.append(args) or ("J", "F"))
    labels = np.zeros((20, 30), np.uint8)
    labels[5:9, 3:20] = 1
    assert frame_scores(labels, labels, 1) == ("J", "F")
    j_values, f_values = frame_scores(labels, labels, 1, radius=measures.KERNEL_MAX_RADIUS + 1)
    assert len(calls) == 1 and j_values.tolist() == [1.0] and f_values.tolist() == [1.0]


def test_object_counts_rejects_mismatched_buffers() -> None:
    with pytest.raises(ValueError, match="width and height"):
        _kernels.object_counts(bytes(12), bytes(11), 4, 3, 1, 2)
    with pytest.raises(ValueError, match="radius"):
        _kernels.object_counts(bytes(12), bytes(12), 4, 3, 1, 251)


def png_rows(image: np.ndarray, filters: list[int]) -> bytes:
    """PNG scanlines of an 8-bit single-channel image, row y filtered with filters[y] (PNG spec, bpp 1)."""
    rows, above = [], np.zeros(image.shape[1], np.int64)
    for row, kind in zip(image.astype(np.int64), filters, strict=True):
        left = np.concatenate([[0], row[:-1]])
        corner = np.concatenate([[0], above[:-1]])
        if kind == 1:
            predicted = left
        elif kind == 2:
            predicted = above
        elif kind == 3:
            predicted = (left + above) // 2
        elif kind == 4:
            estimate = left + above - corner
            pa, pb, pc = np.abs(estimate - left), np.abs(estimate - above), np.abs(estimate - corner)
            predicted = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, corner))
        else:
            predicted = np.zeros_like(row)
        rows.append(bytes([kind]) + ((row - predicted) % 256).astype(np.uint8).tobytes())
        above = row
    return b"".join(rows)


def png_file(image: np.ndarray, filters: list[int]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))

    header = struct.pack(">IIBBBBB", image.shape[1], image.shape[0], 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(png_rows(image, filters)))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("seed", range(20))
def test_unfilter_decodes_every_filter_type_as_pil(seed: int) -> None:
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 50, 2))
    image = rng.integers(0, 256, (height, width)).astype(np.uint8) if seed % 2 else blobs(rng, (height, width), 200)
    data = png_file(image, [int(kind) for kind in rng.integers(0, 5, height)])
    values, mode = fast_png_labels(data)
    np.testing.assert_array_equal(values, np.asarray(Image.open(io.BytesIO(data))))
    np.testing.assert_array_equal(values, image)
    assert mode == "L"


def test_unfilter_leaves_unknown_filter_types_to_pil_and_checks_sizes() -> None:
    assert _kernels.unfilter(bytes([5, 1, 2]), 2, 1) is None
    with pytest.raises(ValueError, match="width and height"):
        _kernels.unfilter(bytes(5), 2, 2)


@pytest.mark.parametrize("seed", range(20))
def test_png_counts_from_filtered_rows_equal_label_map_counts(seed: int) -> None:
    """Decoding straight to runs (every filter type, mixed per row) counts what the decoded label maps count."""
    rng = np.random.default_rng(seed)
    for _ in range(10):
        shape = (int(rng.integers(1, 60)), int(rng.integers(1, 200)))
        num_objects = int(rng.choice([1, 3, 12]))
        gt, res = blobs(rng, shape, num_objects + 2), blobs(rng, shape, num_objects)
        radius = int(rng.integers(0, 12))
        gt_rows = png_rows(gt, [int(kind) for kind in rng.integers(0, 5, shape[0])])
        res_rows = png_rows(res, [int(kind) for kind in rng.integers(0, 5, shape[0])])
        counts, gt_highest, res_highest = _kernels.png_counts(gt_rows, res_rows, shape[1], shape[0], num_objects,
                                                              radius, 0)
        assert counts == _kernels.object_counts(gt, res, shape[1], shape[0], num_objects, radius)
        assert (gt_highest, res_highest) == (int(gt.max()), int(res.max()))


@pytest.mark.parametrize("values", [(0, 255), (0, 1), (0, 100, 200)])
def test_png_counts_binarise_davis2016_masks_as_the_reader_does(values: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(values))
    shape = (40, 90)
    gt = np.asarray(values, np.uint8)[blobs(rng, shape, len(values) - 1)]
    res = blobs(rng, shape, 1)
    labels = (gt > 127).astype(np.uint8) if gt.max() > 1 else gt  # stg.metrics.reading.read_gt_labels
    counts, gt_highest, _ = _kernels.png_counts(png_rows(gt, [1] * shape[0]), png_rows(res, [0] * shape[0]),
                                                shape[1], shape[0], 1, 8, 1)
    assert counts == _kernels.object_counts(labels, res, shape[1], shape[0], 1, 8)
    assert gt_highest == int(gt.max())


def test_png_counts_leave_unknown_filter_types_to_the_reader_and_check_sizes() -> None:
    rows = bytes([0, 1, 1])
    assert _kernels.png_counts(bytes([5, 1, 1]), rows, 2, 1, 1, 1, 0) is None
    assert _kernels.png_counts(rows, rows, 2, 1, 1, 1, 0) == ([(2, 2, 2, 0, 0, 0, 0)], 1, 1)  # one row: no boundary
    with pytest.raises(ValueError, match="width and height"):
        _kernels.png_counts(rows, bytes(4), 2, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="num_objects"):
        _kernels.png_counts(rows, rows, 2, 1, 255, 1, 0)


def test_keep_freed_memory_applies_where_glibc_is() -> None:
    import platform

    from stg.metrics.evaluation import keep_freed_memory

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")
