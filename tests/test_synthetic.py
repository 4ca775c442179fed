"""The synthetic demo dataset: DAVIS 2017 layout, deterministic bytes, the special cases, atomic writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from stg.datasets import open_dataset, read_annotation, read_first_mask, read_frames, synthetic
from stg.datasets.synthetic import generate, video_names
from stg.errors import InputError
from stg.palette import read_png_labels

SMALL = {"height": 120, "width": 214, "frames": (8, 10)}


def tree_hash(root: Path) -> str:
    """One digest over every file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def label_areas(root: Path, name: str, num_objects: int) -> np.ndarray:
    """(T, K+1) pixel count of every label in every frame's annotation."""
    paths = sorted((root / "Annotations" / "480p" / name).glob("*.png"))
    return np.stack([np.bincount(read_png_labels(path)[0].ravel(), minlength=num_objects + 1)[: num_objects + 1]
                     for path in paths])


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "demo"
    generate(root, seed=0, num_videos=5, **SMALL)
    return root


@pytest.fixture(scope="module")
def metadata(small: Path) -> dict:
    return json.loads((small / "synthetic.json").read_text())


def test_names_are_known_before_generation(small: Path) -> None:
    names = video_names(5)
    assert names == ["synth00-occlusion", "synth01-exit", "synth02-single", "synth03-triple", "synth04-plain"]
    assert video_names(2) == names[:2]
    assert (small / "ImageSets" / "2017" / "val.txt").read_text().split() == names
    assert sorted(p.name for p in (small / "JPEGImages" / "480p").iterdir()) == names


def test_generate_returns_the_names(tmp_path: Path) -> None:
    assert generate(tmp_path / "d", num_videos=2, **SMALL) == video_names(2)


def test_layout_frame_counts_and_sizes(small: Path, metadata: dict) -> None:
    assert (small / "README.md").is_file()
    assert metadata["version"] == synthetic.GENERATOR_VERSION
    assert (metadata["seed"], metadata["height"], metadata["width"], metadata["frames"]) == (0, 120, 214, [8, 10])
    for record in metadata["videos"]:
        images = sorted((small / "JPEGImages" / "480p" / record["name"]).glob("*.jpg"))
        masks = sorted((small / "Annotations" / "480p" / record["name"]).glob("*.png"))
        assert 8 <= len(images) <= 10
        assert len(images) == record["frames"]
        assert [p.stem for p in images] == [p.stem for p in masks] == [f"{i:05d}" for i in range(len(images))]
        for image_path, mask_path in zip(images, masks, strict=True):
            assert cv2.imread(str(image_path)).shape == (120, 214, 3)
            labels, mode = read_png_labels(mask_path)
            assert mode == "P"
            assert labels.shape == (120, 214)
        assert 1 <= len(record["objects"]) <= 3


def test_readable_by_the_davis_reader(small: Path, metadata: dict) -> None:
    dataset = open_dataset(small, "davis2017", "val")
    assert dataset.video_names() == video_names(5)
    for video, record in zip(dataset.videos(), metadata["videos"], strict=True):
        first, num_objects = read_first_mask(video)
        assert num_objects == len(record["objects"])
        assert set(np.unique(first)) == set(range(num_objects + 1)), "every object is visible in frame 0"
        for path in video.annotation_paths.values():
            read_annotation(path, "davis2017", shape=(120, 214), num_objects=num_objects)
        assert read_frames(video).shape == (record["frames"], 120, 214, 3)


def test_objects_are_reasonably_large(small: Path, metadata: dict) -> None:
    for record in metadata["videos"]:
        areas = label_areas(small, record["name"], len(record["objects"]))[0, 1:] / (120 * 214)
        assert np.all((areas >= 0.03) & (areas <= 0.25)), (record["name"], areas)


def test_occlusion_video_hides_part_of_the_back_object(small: Path, metadata: dict) -> None:
    record = metadata["videos"][0]
    assert record["kind"] == "occlusion"
    areas = label_areas(small, record["name"], 2)
    back = areas[:, record["back"]]
    assert np.all(areas[:, 1:] > 0), "occlusion, not disappearance"
    assert back.min() < 0.7 * back[0], f"visible area of the back object never drops: {back.tolist()}"
    assert back[-1] > 0.75 * back[0], "the back object is visible again after the crossing"
    assert areas[0, 1:].min() > 0 and record["depth_order"][-1] == record["front"]


def test_exit_video_object_leaves_and_comes_back(small: Path, metadata: dict) -> None:
    record = metadata["videos"][1]
    assert record["kind"] == "exit"
    areas = label_areas(small, record["name"], 2)
    leaving = areas[:, record["leaves"]]
    gone = np.flatnonzero(leaving == 0)
    assert leaving[0] > 0
    assert len(gone) >= 2, f"object should be out of the frame for several frames: {leaving.tolist()}"
    assert np.any(leaving[gone.max() + 1:] > 0), "object comes back"
    assert np.all(np.diff(gone) == 1), "one contiguous stretch out of frame"
    staying = 3 - record["leaves"]
    assert np.all(areas[:, staying] > 0)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, small: Path) -> None:
    generate(tmp_path / "again", seed=0, num_videos=5, **SMALL)
    generate(tmp_path / "other", seed=1, num_videos=5, **SMALL)
    assert tree_hash(tmp_path / "again") == tree_hash(small)
    assert tree_hash(tmp_path / "other") != tree_hash(small)


def test_a_video_does_not_depend_on_the_number_of_videos(tmp_path: Path, small: Path) -> None:
    generate(tmp_path / "two", seed=0, num_videos=2, **SMALL)
    for name in video_names(2):
        for sub in ("JPEGImages", "Annotations"):
            assert tree_hash(tmp_path / "two" / sub / "480p" / name) == tree_hash(small / sub / "480p" / name)


def test_default_size_motion_is_moderate(tmp_path: Path) -> None:
    root = tmp_path / "full"
    generate(root, num_videos=4)
    records = json.loads((root / "synthetic.json").read_text())["videos"]
    assert [r["name"] for r in records] == video_names(4)
    for record in records:
        assert 30 <= record["frames"] <= 60
        assert 1.0 <= record["max_centre_speed_px"] <= 15.0, record
        assert record["max_pan_speed_px"] <= 6.0
        assert all(0.04 <= obj["area_fraction"] <= 0.2 for obj in record["objects"])
    single = records[2]
    labels = [read_png_labels(p)[0] == 1 for p in sorted((root / "Annotations/480p" / single["name"]).glob("*.png"))]
    centroids = np.array([np.argwhere(mask).mean(axis=0) for mask in labels])
    steps = np.linalg.norm(np.diff(centroids, axis=0), axis=1)
    assert steps.max() <= 15 and steps.mean() >= 1, steps


def _fail_on_call(count: int):
    calls = {"n": 0}

    def writer(path: Path, labels: np.ndarray) -> None:
        calls["n"] += 1
        if calls["n"] >= count:
            raise OSError("disk full (simulated)")

    return writer


def test_failure_leaves_no_partial_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "write_palette_png", _fail_on_call(5))
    with pytest.raises(OSError, match="simulated"):
        generate(tmp_path / "demo", num_videos=2, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_previous_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "demo"
    generate(root, num_videos=2, **SMALL)
    before = tree_hash(root)
    monkeypatch.setattr(synthetic, "write_palette_png", _fail_on_call(5))
    with pytest.raises(OSError):
        generate(root, seed=3, num_videos=2, **SMALL)
    assert tree_hash(root) == before
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_regeneration_replaces_the_old_dataset(tmp_path: Path) -> None:
    generate(tmp_path / "demo", seed=0, num_videos=3, **SMALL)
    generate(tmp_path / "demo", seed=1, num_videos=2, **SMALL)
    generate(tmp_path / "fresh", seed=1, num_videos=2, **SMALL)
    assert tree_hash(tmp_path / "demo") == tree_hash(tmp_path / "fresh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "fresh"]


def test_refuses_to_replace_a_folder_that_is_not_synthetic(tmp_path: Path) -> None:
    root = tmp_path / "DAVIS"
    root.mkdir()
    (root / "keep.txt").write_text("real data")
    with pytest.raises(InputError, match="not a synthetic dataset"):
        generate(root, **SMALL)
    assert (root / "keep.txt").read_text() == "real data"
    assert [p.name for p in tmp_path.iterdir()] == ["DAVIS"]


@pytest.mark.parametrize(("settings", "where"), [
    ({"frames": (3, 4)}, "synthetic.frames"),
    ({"frames": (10, 8)}, "synthetic.frames"),
    ({"num_videos": 0}, "synthetic.num_videos"),
    ({"seed": -1}, "synthetic.seed"),
    ({"height": 20}, "synthetic.size"),
    ({"split": "../val"}, "synthetic.split"),
])
def test_bad_settings_are_clear_errors(tmp_path: Path, settings: dict, where: str) -> None:
    with pytest.raises(InputError, match=where.replace(".", r"\.")):
        generate(tmp_path / "demo", **{**SMALL, **settings})
    assert list(tmp_path.iterdir()) == []
