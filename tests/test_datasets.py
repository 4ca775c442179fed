"""DAVIS 2017 / 2016 readers on tiny hand-made folders: the happy paths and every clear error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from stg.datasets import (
    VOID_LABEL,
    detect_layout,
    open_dataset,
    read_annotation,
    read_first_mask,
    read_frames,
)
from stg.errors import InputError
from stg.palette import write_palette_png

HEIGHT, WIDTH = 32, 48
REAL_DAVIS2016 = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-train"


def write_jpeg(path: Path, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def two_objects(void: bool = False) -> np.ndarray:
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    labels[2:10, 2:10] = 1
    labels[12:20, 20:30] = 2
    if void:
        labels[30:, :] = VOID_LABEL
    return labels


def write_palette(path: Path, labels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_palette_png(path, labels)
    return path


def write_grey(path: Path, values: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint8), mode="L").save(path)
    return path


def make_2017(root: Path, videos: dict[str, int], split: str = "val", order: list[str] | None = None) -> Path:
    """DAVIS 2017 layout: every frame a JPEG, only frame 0 annotated (like the val split)."""
    for name, count in videos.items():
        for index in range(count):
            write_jpeg(root / "JPEGImages" / "480p" / name / f"{index:05d}.jpg", seed=index)
        write_palette(root / "Annotations" / "480p" / name / "00000.png", two_objects(void=True))
    split_file = root / "ImageSets" / "2017" / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text("\n".join(order or list(videos)) + "\n\n")
    return root


def make_2016(root: Path, videos: dict[str, int], split: str = "train") -> Path:
    """DAVIS 2016 layout: the split file lists every frame with its annotation; masks are greyscale 0/255."""
    lines = []
    for name, count in videos.items():
        for index in range(count):
            frame = f"/JPEGImages/480p/{name}/{index:05d}.jpg"
            annotation = f"/Annotations/480p/{name}/{index:05d}.png"
            write_jpeg(root / frame.lstrip("/"), seed=index)
            mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
            mask[4 + index:14 + index, 5:25] = 255
            write_grey(root / annotation.lstrip("/"), mask)
            lines.append(f"{frame} {annotation}")
    split_file = root / "ImageSets" / "480p" / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text("\n".join(lines) + "\n")
    return root


def raised(call, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        call(*args, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------------------------------------- happy paths


def test_davis2017_frames_order_and_first_mask(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 3, "beta": 2}, order=["beta", "alpha"])
    dataset = open_dataset(root, "davis2017", "val")
    assert dataset.video_names() == ["beta", "alpha"], "split file order, blank lines ignored"
    video = dataset.video("alpha")
    assert video.frame_names == ["00000", "00001", "00002"]
    assert video.first_annotation == root / "Annotations" / "480p" / "alpha" / "00000.png"
    labels, num_objects = read_first_mask(video)
    assert num_objects == 2, "K from the first mask, void not counted"
    assert labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1, 2, VOID_LABEL}, "void 255 kept"
    assert read_frames(video).shape == (3, HEIGHT, WIDTH, 3)
    assert [v.name for v in dataset.videos()] == ["beta", "alpha"]


def test_synthetic_layout_name_reads_as_davis2017(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 1})
    assert open_dataset(root, "synthetic", "val").layout == "davis2017"


def test_davis2017_binary_greyscale_mask_is_accepted(tmp_path: Path) -> None:
    path = write_grey(tmp_path / "m.png", (two_objects() == 1).astype(np.uint8))
    labels = read_annotation(path, "davis2017")
    assert set(np.unique(labels)) == {0, 1}


def test_davis2016_frame_list_and_binary_masks(tmp_path: Path) -> None:
    root = make_2016(tmp_path, {"cow": 3, "dog": 2})
    dataset = open_dataset(root, "davis2016", "train")
    assert dataset.video_names() == ["cow", "dog"]
    video = dataset.video("dog")
    assert video.frame_names == ["00000", "00001"]
    assert video.frame_paths[1] == root / "JPEGImages" / "480p" / "dog" / "00001.jpg"
    assert sorted(video.annotation_paths) == ["00000", "00001"]
    labels, num_objects = read_first_mask(video)
    assert num_objects == 1
    assert set(np.unique(labels)) == {0, 1}, "greyscale 0/255 read as labels 0/1"
    assert labels[4:14, 5:25].all() and labels.sum() == 10 * 20


def test_davis2016_lines_without_annotation(tmp_path: Path) -> None:
    root = make_2016(tmp_path, {"cow": 3})
    split_file = root / "ImageSets" / "480p" / "train.txt"
    lines = split_file.read_text().splitlines()
    split_file.write_text("\n".join([lines[0], lines[1].split()[0], lines[2]]) + "\n")
    video = open_dataset(root, "davis2016", "train").video("cow")
    assert video.frame_names == ["00000", "00001", "00002"]
    assert sorted(video.annotation_paths) == ["00000", "00002"]


def test_detect_layout(tmp_path: Path) -> None:
    assert detect_layout(make_2017(tmp_path / "a", {"x": 1}), "val") == "davis2017"
    assert detect_layout(make_2016(tmp_path / "b", {"x": 1}), "train") == "davis2016"
    message = raised(detect_layout, tmp_path / "b", "val")
    assert str(tmp_path / "b") in message
    assert "ImageSets/2017/val.txt" in message and "ImageSets/480p/val.txt" in message


# ----------------------------------------------------------------------------------------------- clear errors


def test_unknown_layout_and_missing_root(tmp_path: Path) -> None:
    assert "unknown dataset layout 'davis2019'" in raised(open_dataset, tmp_path, "davis2019", "val")
    missing = tmp_path / "nowhere"
    message = raised(open_dataset, missing, "davis2017", "val")
    assert str(missing) in message and "root folder is missing" in message


def test_missing_split_file(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 1})
    message = raised(open_dataset(root, "davis2017", "test-dev").video_names)
    assert str(root / "ImageSets" / "2017" / "test-dev.txt") in message
    assert "split file for split 'test-dev' is missing" in message


def test_empty_split_file(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 1})
    split_file = root / "ImageSets" / "2017" / "val.txt"
    split_file.write_text("\n  \n")
    message = raised(open_dataset(root, "davis2017", "val").video_names)
    assert str(split_file) in message and "split file is empty" in message


def test_missing_image_folder(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 1}, order=["alpha", "ghost"])
    message = raised(open_dataset(root, "davis2017", "val").video, "ghost")
    assert str(root / "JPEGImages" / "480p" / "ghost") in message
    assert "image folder of sequence 'ghost' is missing" in message


def test_missing_annotation_folder(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 2})
    (root / "Annotations" / "480p" / "alpha" / "00000.png").unlink()
    (root / "Annotations" / "480p" / "alpha").rmdir()
    message = raised(open_dataset(root, "davis2017", "val").video, "alpha")
    assert str(root / "Annotations" / "480p" / "alpha") in message
    assert "annotation folder of sequence 'alpha' is missing" in message


def test_missing_first_frame_annotation(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 2})
    annotations = root / "Annotations" / "480p" / "alpha"
    (annotations / "00000.png").rename(annotations / "00001.png")
    message = raised(open_dataset(root, "davis2017", "val").video, "alpha")
    assert str(root / "JPEGImages" / "480p" / "alpha" / "00000.jpg") in message
    assert "first frame has no annotation" in message


def test_missing_first_frame_annotation_davis2016(tmp_path: Path) -> None:
    root = make_2016(tmp_path, {"cow": 2})
    (root / "Annotations" / "480p" / "cow" / "00000.png").unlink()
    message = raised(open_dataset(root, "davis2016", "train").video, "cow")
    assert "00000.jpg" in message and "first frame has no annotation" in message


def test_frame_listed_in_davis2016_split_is_missing(tmp_path: Path) -> None:
    root = make_2016(tmp_path, {"cow": 2})
    frame = root / "JPEGImages" / "480p" / "cow" / "00001.jpg"
    frame.unlink()
    message = raised(open_dataset(root, "davis2016", "train").video, "cow")
    assert str(frame) in message and "is missing" in message


def test_empty_video(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 1})
    image_dir = root / "JPEGImages" / "480p" / "alpha"
    (image_dir / "00000.jpg").unlink()
    message = raised(open_dataset(root, "davis2017", "val").video, "alpha")
    assert str(image_dir) in message and "video is empty" in message


def test_mask_size_differs_from_image(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 1})
    mask = write_palette(root / "Annotations" / "480p" / "alpha" / "00000.png", np.ones((HEIGHT, WIDTH + 2), np.uint8))
    video = open_dataset(root, "davis2017", "val").video("alpha")
    message = raised(read_first_mask, video)
    assert str(mask) in message
    assert f"mask size {WIDTH + 2}x{HEIGHT} differs from the image size {WIDTH}x{HEIGHT}" in message


def test_multi_object_mask_must_be_palette(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 1})
    mask = write_grey(root / "Annotations" / "480p" / "alpha" / "00000.png", two_objects())
    video = open_dataset(root, "davis2017", "val").video("alpha")
    message = raised(read_first_mask, video)
    assert str(mask) in message
    assert "not a palette PNG (mode L" in message and "[0, 1, 2]" in message


def test_rgb_mask_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8)).save(path)
    message = raised(read_annotation, path, "davis2017")
    assert str(path) in message and "single-channel PNG, got mode RGB" in message


def test_label_beyond_first_frame_objects(tmp_path: Path) -> None:
    path = write_palette(tmp_path / "00005.png", two_objects(void=True))
    assert read_annotation(path, "davis2017", num_objects=2).max() == VOID_LABEL
    message = raised(read_annotation, path, "davis2017", num_objects=1)
    assert str(path) in message and "label 2 is beyond the first frame's 1 object(s)" in message


def test_first_mask_without_objects(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 1})
    mask = write_palette(root / "Annotations" / "480p" / "alpha" / "00000.png", np.zeros((HEIGHT, WIDTH), np.uint8))
    message = raised(read_first_mask, open_dataset(root, "davis2017", "val").video("alpha"))
    assert str(mask) in message and "contains no object" in message


def test_unreadable_annotation(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png at all")
    message = raised(read_annotation, path, "davis2017")
    assert str(path) in message and "cannot be read as a PNG image" in message


def test_corrupt_jpeg_in_read_frames(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 3})
    bad = root / "JPEGImages" / "480p" / "alpha" / "00001.jpg"
    bad.write_bytes(b"\xff\xd8garbage, not a JPEG")
    message = raised(read_frames, open_dataset(root, "davis2017", "val").video("alpha"))
    assert str(bad) in message and "corrupt or not an image" in message


def test_corrupt_first_frame_in_read_first_mask(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 1})
    bad = root / "JPEGImages" / "480p" / "alpha" / "00000.jpg"
    bad.write_bytes(b"garbage")
    message = raised(read_first_mask, open_dataset(root, "davis2017", "val").video("alpha"))
    assert str(bad) in message and "corrupt or not an image" in message


def test_frames_of_different_sizes(tmp_path: Path) -> None:
    root = make_2017(tmp_path, {"alpha": 3})
    odd = write_jpeg(root / "JPEGImages" / "480p" / "alpha" / "00002.jpg", height=HEIGHT + 8)
    message = raised(read_frames, open_dataset(root, "davis2017", "val").video("alpha"))
    assert str(odd) in message
    assert f"frame size {WIDTH}x{HEIGHT + 8} differs from the first frame's {WIDTH}x{HEIGHT}" in message


# ----------------------------------------------------------------------------------------------- real data


@pytest.mark.skipif(not REAL_DAVIS2016.is_dir(), reason=f"real DAVIS 2016 train data not found at {REAL_DAVIS2016}")
def test_real_davis2016_train() -> None:
    assert detect_layout(REAL_DAVIS2016, "train") == "davis2016"
    dataset = open_dataset(REAL_DAVIS2016, "davis2016", "train")
    names = dataset.video_names()
    # Counts come from the data's own split files (the shared folder has grown before: 13 -> 28 videos).
    split_file = REAL_DAVIS2016 / "ImageSets" / "480p" / "train.txt"
    listed = {line.split()[0].split("/")[3] for line in split_file.read_text().splitlines() if line.strip()}
    assert sorted(names) == sorted(listed)
    assert names[0] == "bear"
    for fold in ("foldtrain", "foldcheck"):
        if (REAL_DAVIS2016 / "ImageSets" / "480p" / f"{fold}.txt").is_file():
            assert set(open_dataset(REAL_DAVIS2016, "davis2016", fold).video_names()) <= listed
    labels, num_objects = read_first_mask(dataset.video("bear"))
    assert num_objects == 1
    assert labels.shape == (480, 854)
    assert set(np.unique(labels)) <= {0, 1}
