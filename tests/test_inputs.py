"""Input reliability (issue 11): frame order, accepted extensions, truncated images, file modes, 16-bit masks,
unknown result folders and the missing first annotation, on tiny hand-made DAVIS-layout folders."""

from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from stg.atomic import atomic_directory, atomic_file, write_text_atomic
from stg.cli import main
from stg.datasets import frame_size, open_dataset, read_annotation, read_first_mask, read_frame, read_frames
from stg.datasets.images import natural_key, read_label_png
from stg.errors import InputError
from stg.metrics.evaluation import evaluate
from stg.metrics.reading import read_gt_labels, read_result_labels
from stg.metrics.tables import write_outputs
from stg.palette import write_palette_png

HEIGHT, WIDTH = 48, 64


def frame_image(index: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A smooth BGR image whose mean brightness encodes the frame index (survives JPEG compression)."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 2) % 64, (y * 2) % 64, (x + y) % 64], axis=-1)
    return (base + 10 * index).clip(0, 255).astype(np.uint8)


def write_frame(path: Path, index: int, height: int = HEIGHT, width: int = WIDTH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", frame_image(index, height, width), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    path.write_bytes(data.tobytes())
    return path


def square(index: int = 0, label: int = 1) -> np.ndarray:
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    labels[10 + index:30 + index, 12:40] = label
    return labels


def write_mask(path: Path, labels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_palette_png(path, labels)
    return path


def make_video(root: Path, name: str, stems: list[str], split: str = "val", frame_ext: str = ".jpg",
               annotate_all: bool = True) -> Path:
    """DAVIS 2017 layout: frame i of `stems` has brightness index i; annotation of the first (or every) frame."""
    for index, stem in enumerate(stems):
        write_frame(root / "JPEGImages" / "480p" / name / f"{stem}{frame_ext}", index)
        if annotate_all or index == 0:
            write_mask(root / "Annotations" / "480p" / name / f"{stem}.png", square(index))
    split_file = root / "ImageSets" / "2017" / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    listed = split_file.read_text().split() if split_file.exists() else []
    split_file.write_text("\n".join([*listed, name]) + "\n")
    return root


def make_2016(root: Path, name: str, stems: list[str], split: str = "train") -> Path:
    """DAVIS 2016 layout, the split file listing the frames in string order (as `sorted` would)."""
    lines = []
    for index, stem in enumerate(stems):
        write_frame(root / "JPEGImages" / "480p" / name / f"{stem}.jpg", index)
        path = root / "Annotations" / "480p" / name / f"{stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(square(index) * 255, mode="L").save(path)
        lines.append(f"/JPEGImages/480p/{name}/{stem}.jpg /Annotations/480p/{name}/{stem}.png")
    split_file = root / "ImageSets" / "480p" / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text("\n".join(sorted(lines)) + "\n")
    return root


def message(function, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as raised:
        function(*args, **kwargs)
    return raised.value


def frame_indices(frames: np.ndarray) -> list[int]:
    """Which frame_image each decoded frame is (by its brightness offset)."""
    reference = frame_image(0)[..., ::-1].astype(np.float64).mean()
    return [round((frame.astype(np.float64).mean() - reference) / 10) for frame in frames]


def truncate(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def leftovers(folder: Path, name: str) -> list[str]:
    """The store `name` or any temporary sibling of it (`.name.tmp-*`) left in folder."""
    return [p.name for p in folder.iterdir() if p.name == name or p.name.startswith(f".{name}.")]


# --------------------------------------------------------------------------------------- 1. frame order


def test_natural_key_orders_numbers_as_numbers() -> None:
    assert sorted(["10", "2", "0", "1", "11"], key=natural_key) == ["0", "1", "2", "10", "11"]
    assert sorted(["frame_10", "frame_9", "frame_1"], key=natural_key) == ["frame_1", "frame_9", "frame_10"]
    assert sorted(["b2", "a10", "a9"], key=natural_key) == ["a9", "a10", "b2"]


def test_unpadded_frame_names_are_read_in_natural_order(tmp_path: Path) -> None:
    stems = [str(index) for index in range(12)]
    root = make_video(tmp_path, "walk", stems)
    video = open_dataset(root, "davis2017", "val").video("walk")
    assert video.frame_names == stems, "0, 1, 2, ..., 10, 11 and not 0, 1, 10, 11, 2, ..."
    assert list(video.annotation_paths) == stems
    assert frame_indices(read_frames(video)) == list(range(12)), "decoded frames in time order"


def test_unpadded_davis2016_frames_are_read_in_natural_order(tmp_path: Path) -> None:
    stems = [str(index) for index in range(11)]
    root = make_2016(tmp_path, "cow", stems)
    video = open_dataset(root, "davis2016", "train").video("cow")
    assert video.frame_names == stems
    assert frame_indices(read_frames(video)) == list(range(11))


def test_upper_case_and_jpeg_extensions_are_frames(tmp_path: Path) -> None:
    root = make_video(tmp_path, "cam", ["00000", "00001"], frame_ext=".JPG")
    write_frame(root / "JPEGImages" / "480p" / "cam" / "00002.jpeg", 2)
    write_frame(root / "JPEGImages" / "480p" / "cam" / "00003.JPEG", 3)
    (root / "JPEGImages" / "480p" / "cam" / "notes.txt").write_text("not a frame")
    (root / "Annotations" / "480p" / "cam" / "00000.png").rename(root / "Annotations" / "480p" / "cam" / "00000.PNG")
    video = open_dataset(root, "davis2017", "val").video("cam")
    assert video.frame_names == ["00000", "00001", "00002", "00003"]
    assert video.first_annotation.name == "00000.PNG"
    assert frame_indices(read_frames(video)) == [0, 1, 2, 3]


def test_folder_without_frames_says_what_it_looked_for_and_found(tmp_path: Path) -> None:
    root = make_video(tmp_path, "odd", ["00000", "00001"])
    folder = root / "JPEGImages" / "480p" / "odd"
    for path in folder.iterdir():
        path.rename(path.with_suffix(".png"))
    (folder / "thumbs.db").write_bytes(b"")
    error = message(open_dataset(root, "davis2017", "val").video, "odd")
    assert error.where == str(folder)
    assert "*.jpg" in error.problem and "*.jpeg" in error.problem and "any letter case" in error.problem
    assert "00000.png, 00001.png, thumbs.db" in error.problem


def test_same_frame_name_with_two_extensions_is_an_error(tmp_path: Path) -> None:
    root = make_video(tmp_path, "dup", ["00000", "00001"])
    folder = root / "JPEGImages" / "480p" / "dup"
    write_frame(folder / "00001.JPG", 5)
    error = message(open_dataset(root, "davis2017", "val").video, "dup")
    assert error.where == str(folder)
    assert "'00001'" in error.problem and "00001.JPG" in error.problem and "00001.jpg" in error.problem
    annotations = root / "Annotations" / "480p" / "dup"
    (folder / "00001.JPG").unlink()
    write_mask(annotations / "00000.PNG", square())
    error = message(open_dataset(root, "davis2017", "val").video, "dup")
    assert error.where == str(annotations) and "00000.PNG" in error.problem and "00000.png" in error.problem


# ------------------------------------------------------------------------------ 2. truncated / corrupt images


def test_truncated_jpeg_is_an_error_naming_it(tmp_path: Path) -> None:
    root = make_video(tmp_path, "cut", ["00000", "00001", "00002"])
    frame = truncate(root / "JPEGImages" / "480p" / "cut" / "00001.jpg")
    video = open_dataset(root, "davis2017", "val").video("cut")
    error = message(read_frames, video)
    assert error.where == str(frame) and "truncated JPEG" in error.problem
    cut_marker = root / "JPEGImages" / "480p" / "cut" / "00002.jpg"
    cut_marker.write_bytes(cut_marker.read_bytes()[:-2])  # only the end-of-image marker missing
    assert "FFD9" in message(read_frame, cut_marker).problem


def test_complete_jpeg_with_trailing_padding_is_accepted(tmp_path: Path) -> None:
    path = write_frame(tmp_path / "00000.jpg", 3)
    path.write_bytes(path.read_bytes() + b"\x00" * 32 + b"\r\n")
    assert frame_indices(read_frame(path)[None]) == [3]


def test_truncated_or_corrupt_png_is_an_error_naming_it(tmp_path: Path) -> None:
    labels = np.random.default_rng(0).integers(0, 3, (HEIGHT, WIDTH)).astype(np.uint8)
    whole = write_mask(tmp_path / "whole.png", labels).read_bytes()
    cases = {
        "half.png": whole[:len(whole) // 2],
        "no-iend.png": whole[:-12],  # pixel data complete: PIL alone would decode it without complaint
        "corrupt.png": whole[:60] + b"\x00" * 40 + whole[100:],
        "empty.png": b"",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        for read in (lambda p: read_annotation(p, "davis2017"), lambda p: read_gt_labels(p, "davis2017", labels.shape),
                     lambda p: read_result_labels(p, labels.shape, 2), read_label_png):
            error = message(read, path)
            assert error.where == str(path), name
            assert "cannot be read as a PNG image" in error.problem, (name, error.problem)
    padded = tmp_path / "padded.png"
    padded.write_bytes(whole + b"\x00\x00\n")
    np.testing.assert_array_equal(read_annotation(padded, "davis2017"), labels)
    np.testing.assert_array_equal(read_gt_labels(padded, "davis2017", labels.shape), labels)


def test_truncated_png_is_an_error_even_where_pil_allows_truncated_images(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = write_mask(tmp_path / "m.png", square())
    truncate(path, 0.8)
    assert str(path) in str(message(read_annotation, path, "davis2017"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True, "the process-wide setting is left as it was"


def test_flow_cli_refuses_a_truncated_jpeg_and_leaves_no_store(tmp_path: Path, capsys) -> None:
    root = make_video(tmp_path / "data", "cut", ["0", "1", "2", "3"])
    frame = truncate(root / "JPEGImages" / "480p" / "cut" / "2.jpg")
    out = tmp_path / "out"
    out.mkdir()
    code = main(["flow", "--dataset-root", str(root), "--split", "val", "--video", "cut",
                 "--out", str(out / "flow.zarr")])
    err = capsys.readouterr().err
    assert code != 0
    assert str(frame) in err and "truncated JPEG" in err
    assert leftovers(out, "flow.zarr") == []


def test_stage_cli_refuses_a_truncated_png_and_leaves_no_store(tmp_path: Path, capsys) -> None:
    root = make_video(tmp_path / "data", "cut", ["0", "1", "2"])
    out = tmp_path / "out"
    out.mkdir()
    common = ["--dataset-root", str(root), "--split", "val", "--video", "cut"]
    assert main(["flow", *common, "--out", str(out / "flow.zarr")]) == 0
    mask = truncate(root / "Annotations" / "480p" / "cut" / "0.png", 0.7)
    capsys.readouterr()
    code = main(["warp", *common, "--flow", str(out / "flow.zarr"), "--out", str(out / "warp.zarr")])
    err = capsys.readouterr().err
    assert code != 0
    assert str(mask) in err and "cannot be read as a PNG image" in err
    assert leftovers(out, "warp.zarr") == []


def test_metrics_cli_refuses_a_truncated_result_png(tmp_path: Path, capsys) -> None:
    root = make_video(tmp_path / "data", "cut", ["0", "1", "2", "3"])
    results = tmp_path / "results"
    shutil.copytree(root / "Annotations" / "480p", results)
    result = results / "cut" / "2.png"
    result.write_bytes(result.read_bytes()[:-12])
    code = main(["metrics", "--davis-root", str(root), "--results", str(results), "--set", "val",
                 "--out", str(tmp_path / "scores"), "--processes", "1"])
    err = capsys.readouterr().err
    assert code != 0 and str(result) in err and "truncated PNG" in err
    assert not (tmp_path / "scores").exists() or list((tmp_path / "scores").iterdir()) == []


# ------------------------------------------------------------------------------------ 3a. file modes


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_honour_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "a.txt", "text")
        with atomic_file(tmp_path / "b.bin", binary=True) as stream:
            stream.write(b"bytes")
        with atomic_directory(tmp_path / "run") as folder:
            write_palette_png(folder / "mask.png", square())
        metrics = {"global": dict.fromkeys(("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall",
                                            "F-Decay"), 0.5),
                   "objects": {"seq_1": {"J-Mean": 0.5, "F-Mean": 0.5}}}
        write_outputs(metrics, tmp_path / "scores", "val")
    finally:
        os.umask(previous)
    files = [tmp_path / "a.txt", tmp_path / "b.bin", tmp_path / "run" / "mask.png",
             *sorted((tmp_path / "scores").iterdir())]
    assert {p.name for p in files} >= {"global_results-val.csv", "per-sequence_results-val.csv", "metrics.json"}
    for path in files:
        assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~umask), path.name
    assert oct((tmp_path / "run").stat().st_mode & 0o777) == oct(0o777 & ~umask)


# ------------------------------------------------------------------------------------ 3b. 16-bit masks


def write_16bit(path: Path, values: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint16)).save(path)
    with Image.open(path) as image:
        assert image.mode.startswith("I"), image.mode
    return path


def test_binary_16bit_mask_is_one_object(tmp_path: Path) -> None:
    root = make_video(tmp_path, "deep", ["00000", "00001", "00002"])
    for index in range(3):
        mask = square(index).astype(np.uint16) * 65535
        write_16bit(root / "Annotations" / "480p" / "deep" / f"0000{index}.png", mask)
    video = open_dataset(root, "davis2017", "val").video("deep")
    labels, num_objects = read_first_mask(video)
    assert num_objects == 1
    np.testing.assert_array_equal(labels, square(0))
    path = video.annotation_paths["00001"]
    np.testing.assert_array_equal(read_annotation(path, "davis2016"), square(1))
    np.testing.assert_array_equal(read_gt_labels(path, "davis2017", (HEIGHT, WIDTH)), square(1))
    np.testing.assert_array_equal(read_result_labels(path, (HEIGHT, WIDTH), 1), square(1))
    results = tmp_path / "results"
    shutil.copytree(root / "Annotations" / "480p", results)
    scores = evaluate(root, results, "val", processes=1, progress=False)
    assert scores["global"]["J&F-Mean"] == pytest.approx(1.0)


def test_other_16bit_masks_are_refused_saying_what_they_hold(tmp_path: Path) -> None:
    values = square(0).astype(np.uint16) * 1000
    values[0, :4] = 2000
    path = write_16bit(tmp_path / "two.png", values)
    for read in (lambda p: read_annotation(p, "davis2017"), lambda p: read_gt_labels(p, "davis2017", values.shape),
                 lambda p: read_result_labels(p, values.shape, 2)):
        error = message(read, path)
        assert error.where == str(path)
        assert "16-bit" in error.problem and "[0, 1000, 2000]" in error.problem and "palette" in error.problem


# ------------------------------------------------------------------------- 3c. unknown result folders


def test_unknown_sequence_folder_in_results_is_named_in_a_warning(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    root = make_video(tmp_path / "data", "cut", ["0", "1", "2", "3"])
    results = tmp_path / "results"
    shutil.copytree(root / "Annotations" / "480p", results)
    shutil.copytree(results / "cut", results / "not-in-split")
    (results / "global_results-val.csv").write_text("the official toolkit writes its CSVs here\n")
    write_mask(results / "cut" / "00002.png", square())
    with caplog.at_level(logging.WARNING, logger="stg.metrics.reading"):
        scores = evaluate(root, results, "val", processes=1, progress=False)
    assert scores["global"]["J&F-Mean"] == pytest.approx(1.0)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("not-in-split" in text and str(results) in text for text in warnings), warnings
    assert any("00002.png" in text and str(results / "cut") in text for text in warnings), warnings
    assert not any("global_results" in text for text in warnings)


# ----------------------------------------------------------------------- 3d. missing first annotation


def test_missing_first_annotation_names_the_expected_png(tmp_path: Path) -> None:
    root = make_video(tmp_path, "gap", ["00000", "00001"])
    expected = root / "Annotations" / "480p" / "gap" / "00000.png"
    expected.unlink()
    error = message(open_dataset(root, "davis2017", "val").video, "gap")
    assert error.where == str(expected)
    assert "annotation is missing" in error.problem and "00000.jpg" in error.problem

    root16 = make_2016(tmp_path / "d16", "cow", ["00000", "00001"])
    expected = root16 / "Annotations" / "480p" / "cow" / "00000.png"
    expected.unlink()
    error = message(open_dataset(root16, "davis2016", "train").video, "cow")
    assert error.where == str(expected)


# ------------------------------------------------------------------------------------------- EXIF rotation


def test_frame_size_matches_the_decoded_frame_of_a_rotated_jpeg(tmp_path: Path) -> None:
    image = Image.fromarray(frame_image(0)[..., ::-1].copy())
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    path = tmp_path / "rotated.jpg"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    path.write_bytes(buffer.getvalue())
    assert frame_size(path) == read_frame(path).shape[:2] == (WIDTH, HEIGHT)
