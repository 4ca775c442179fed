"""Readers for YouTube-VOS, SegTrack-v2, YouTube-Objects and a user's folder, on tiny synthetic data in each layout
(stg.datasets.synthetic_layouts): frames, names, per-object starts and seeds, scored frames, and every clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from stg.datasets import (
    LAYOUT_DEFAULTS,
    LAYOUTS,
    ObjectMasks,
    VideoFrame,
    frame_size,
    layout_defaults,
    open_dataset,
    read_annotation,
    read_first_mask,
    read_frame,
    read_frames,
    read_labels,
    read_seed_mask,
)
from stg.datasets.synthetic import generate
from stg.datasets.synthetic_layouts import (
    HEIGHT,
    LATE_START,
    WIDTH,
    write_folder,
    write_segtrack_v2,
    write_video_file,
    write_youtube_objects,
    write_youtube_vos,
)
from stg.errors import InputError
from stg.palette import write_palette_png

LATE_VIDEO = "synth03-triple"  # write_youtube_vos: its object 3 enters late


def raised(call, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        call(*args, **kwargs)
    return str(info.value)


def record(root: Path) -> dict:
    """What the writer says each video shows (synthetic.json), independent of the readers."""
    return json.loads((root / "synthetic.json").read_text())["videos"]


def starts_of(root: Path, name: str) -> dict[int, int]:
    return {int(label): start for label, start in record(root)[name]["starts"].items()}


def copy(source: Path, tmp_path: Path) -> Path:
    """A private copy of a module-wide dataset, for a test that breaks it."""
    return Path(shutil.copytree(source, tmp_path / source.name))


def files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*")}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("layouts")
    write_youtube_vos(base / "ytvos_valid", split="valid")
    write_youtube_vos(base / "ytvos_train", split="train")
    write_segtrack_v2(base / "segtrack")
    write_youtube_objects(base / "ytobj")
    write_folder(base / "folder_avi", video_suffix=".avi")
    write_folder(base / "folder_mp4", video_suffix=".mp4")
    return base


# ----------------------------------------------------------------------------------------------- YouTube-VOS


def test_youtube_vos_valid_frames_starts_and_late_seed(data: Path) -> None:
    root = data / "ytvos_valid"
    dataset = open_dataset(root, "youtube_vos", "valid")
    assert dataset.video_names() == [LATE_VIDEO, "synth00-occlusion"], "meta.json order"
    assert dataset.scorable is False
    video = dataset.video(LATE_VIDEO)
    assert video.frame_names == [f"{5 * index:05d}" for index in range(8)], "original, non-contiguous names kept"
    assert read_frames(video).shape == (8, HEIGHT, WIDTH, 3)
    assert video.object_starts == starts_of(root, LATE_VIDEO) == {1: 0, 2: 0, 3: video.object_starts[3]}
    assert video.object_starts[3] >= LATE_START >= 2
    assert video.num_objects == 3 and video.seed_frames == (0, video.object_starts[3])
    assert video.has_ground_truth is False and video.scored_frames == ()
    late = video.object_starts[3]
    assert sorted(video.annotation_paths) == ["00000", f"{5 * late:05d}"], "valid: annotated where objects start"
    seed = read_seed_mask(video, late)
    assert set(np.unique(seed)) == {0, 3} and (seed == 3).sum() >= 12
    first = read_seed_mask(video, 0)
    assert set(np.unique(first)) == {0, 1, 2}
    labels, num_objects = read_first_mask(video)
    assert num_objects == 2 and np.array_equal(labels, first), "read_first_mask: frame 0's objects only"
    with pytest.raises(ValueError, match="no object"):
        read_seed_mask(video, 1)


def test_youtube_vos_train_seed_keeps_only_the_starting_object(data: Path) -> None:
    dataset = open_dataset(data / "ytvos_train", "youtube_vos", "train")
    assert dataset.scorable is True
    video = dataset.video(LATE_VIDEO)
    late = video.object_starts[3]
    assert video.scored_frames == tuple(range(8)), "train: every frame annotated and scored"
    full = read_labels(video, late)
    assert {1, 2, 3} <= set(np.unique(full)), "the train annotation there holds the earlier objects too"
    seed = read_seed_mask(video, late)
    assert np.array_equal(seed, np.where(full == 3, 3, 0))
    valid = open_dataset(data / "ytvos_valid", "youtube_vos", "valid").video(LATE_VIDEO)
    assert np.array_equal(seed, read_seed_mask(valid, late)), "same scene, same seed in both splits"


def test_youtube_vos_video_order_follows_meta_json(data: Path, tmp_path: Path) -> None:
    root = copy(data / "ytvos_valid", tmp_path)
    meta_file = root / "valid" / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({"videos": dict(reversed(list(meta["videos"].items())))}))
    assert open_dataset(root, "youtube_vos", "valid").video_names() == ["synth00-occlusion", LATE_VIDEO]


def test_youtube_vos_missing_meta_json(data: Path, tmp_path: Path) -> None:
    root = copy(data / "ytvos_valid", tmp_path)
    (root / "valid" / "meta.json").unlink()
    message = raised(open_dataset(root, "youtube_vos", "valid").video_names)
    assert str(root / "valid" / "meta.json") in message and "meta.json is missing" in message


def test_youtube_vos_malformed_meta_json(data: Path, tmp_path: Path) -> None:
    root = copy(data / "ytvos_valid", tmp_path)
    meta_file = root / "valid" / "meta.json"
    meta_file.write_text('{"videos": {"a": {"objects": {"x": {"frames": ["00000"]}}}}}')
    message = raised(open_dataset(root, "youtube_vos", "valid").video_names)
    assert str(meta_file) in message and "object id 'x'" in message


def test_youtube_vos_video_listed_but_absent(data: Path, tmp_path: Path) -> None:
    root = copy(data / "ytvos_valid", tmp_path)
    meta_file = root / "valid" / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["videos"]["ghost"] = {"objects": {"1": {"category": "x", "frames": ["00000"]}}}
    meta_file.write_text(json.dumps(meta))
    dataset = open_dataset(root, "youtube_vos", "valid")
    assert dataset.video_names()[-1] == "ghost"
    message = raised(dataset.video, "ghost")
    assert str(root / "valid" / "JPEGImages" / "ghost") in message and str(meta_file) in message
    assert "is missing" in message


def test_youtube_vos_object_id_not_in_meta_json(data: Path, tmp_path: Path) -> None:
    root = copy(data / "ytvos_valid", tmp_path)
    mask = root / "valid" / "Annotations" / LATE_VIDEO / "00000.png"
    labels = np.asarray(Image.open(mask)).copy()
    labels[:4, :4] = 7
    write_palette_png(mask, labels)
    video = open_dataset(root, "youtube_vos", "valid").video(LATE_VIDEO)
    message = raised(read_seed_mask, video, 0)
    assert str(mask) in message and "[7]" in message and "meta.json" in message


def test_youtube_vos_start_frame_not_on_disk_or_not_annotated(data: Path, tmp_path: Path) -> None:
    root = copy(data / "ytvos_valid", tmp_path)
    meta_file = root / "valid" / "meta.json"
    meta = json.loads(meta_file.read_text())
    frames = meta["videos"][LATE_VIDEO]["objects"]["3"]["frames"]
    meta["videos"][LATE_VIDEO]["objects"]["3"]["frames"] = ["00001", *frames]
    meta_file.write_text(json.dumps(meta))
    message = raised(open_dataset(root, "youtube_vos", "valid").video, LATE_VIDEO)
    assert str(meta_file) in message and "starts at frame '00001'" in message
    meta["videos"][LATE_VIDEO]["objects"]["3"]["frames"] = ["00005", *frames]
    meta_file.write_text(json.dumps(meta))
    message = raised(open_dataset(root, "youtube_vos", "valid").video, LATE_VIDEO)
    assert str(root / "valid" / "Annotations" / LATE_VIDEO / "00005.png") in message
    assert "annotation is missing: object 3" in message


def test_youtube_vos_frames_of_different_sizes(data: Path, tmp_path: Path) -> None:
    root = copy(data / "ytvos_valid", tmp_path)
    odd = root / "valid" / "JPEGImages" / LATE_VIDEO / "00010.jpg"
    assert cv2.imwrite(str(odd), np.zeros((HEIGHT + 8, WIDTH, 3), np.uint8))
    message = raised(read_frames, open_dataset(root, "youtube_vos", "valid").video(LATE_VIDEO))
    assert str(odd) in message and f"frame size {WIDTH}x{HEIGHT + 8} differs" in message


# ----------------------------------------------------------------------------------------------- SegTrack-v2


def test_segtrack_v2_multi_object_masks_are_combined(data: Path) -> None:
    root = data / "segtrack"
    dataset = open_dataset(root, "segtrack_v2", "all")
    assert dataset.video_names() == ["synth00-occlusion", "synth02-single"] and dataset.scorable
    video = dataset.video("synth00-occlusion")
    assert video.frame_names[0] == "synth00-occlusion_00000" and video.frame_paths[0].suffix == ".bmp"
    assert read_frames(video).shape == (8, HEIGHT, WIDTH, 3)
    masks = video.annotation_paths[video.frame_names[2]]
    assert isinstance(masks, ObjectMasks) and [path.parent.name for path in masks.paths] == ["1", "2"]
    labels = read_labels(video, 2)
    parts = [np.asarray(Image.open(path)) > 127 for path in masks.paths]
    assert parts[0].any() and parts[1].any()
    assert np.array_equal(labels, np.where(parts[1], 2, np.where(parts[0], 1, 0)))
    assert video.object_starts == starts_of(root, video.name) == {1: 0, 2: 0}
    assert video.scored_frames == tuple(range(8)) and video.has_ground_truth


def test_segtrack_v2_object_folders_in_natural_order(data: Path, tmp_path: Path) -> None:
    root = copy(data / "segtrack", tmp_path)
    ground_truth = root / "GroundTruth" / "synth00-occlusion"
    before = read_labels(open_dataset(root, "segtrack_v2", "all").video("synth00-occlusion"), 0)
    (ground_truth / "1").rename(ground_truth / "10")
    (ground_truth / "2").rename(ground_truth / "9")
    after = read_labels(open_dataset(root, "segtrack_v2", "all").video("synth00-occlusion"), 0)
    assert np.array_equal(after, np.choose(before, [0, 2, 1])), "folder 9 is object 1, folder 10 object 2"


def test_segtrack_v2_single_object_and_split_file(data: Path, tmp_path: Path) -> None:
    video = open_dataset(data / "segtrack", "segtrack_v2", "all").video("synth02-single")
    assert video.frame_paths[0].suffix == ".png"
    assert set(np.unique(read_labels(video, 0))) == {0, 1}, "binary 0/255 mask read as object 1"
    root = copy(data / "segtrack", tmp_path)
    (root / "ImageSets").mkdir()
    (root / "ImageSets" / "mine.txt").write_text("synth02-single\n")
    assert open_dataset(root, "segtrack_v2", "mine").video_names() == ["synth02-single"]
    message = raised(open_dataset(root, "segtrack_v2", "other").video_names)
    assert str(root / "ImageSets" / "other.txt") in message and "split file for split 'other' is missing" in message


def test_segtrack_v2_missing_object_mask(data: Path, tmp_path: Path) -> None:
    root = copy(data / "segtrack", tmp_path)
    missing = root / "GroundTruth" / "synth00-occlusion" / "2" / "synth00-occlusion_00003.png"
    missing.unlink()
    message = raised(open_dataset(root, "segtrack_v2", "all").video, "synth00-occlusion")
    assert str(missing) in message and "mask of object folder '2' is missing" in message


def test_segtrack_v2_mask_named_after_no_frame(data: Path, tmp_path: Path) -> None:
    root = copy(data / "segtrack", tmp_path)
    stray = root / "GroundTruth" / "synth02-single" / "synth02-single_00099.png"
    shutil.copy(root / "GroundTruth" / "synth02-single" / "synth02-single_00000.png", stray)
    message = raised(open_dataset(root, "segtrack_v2", "all").video, "synth02-single")
    assert str(stray) in message and "named after no frame" in message


# ----------------------------------------------------------------------------------------------- YouTube-Objects


def test_youtube_objects_subset_of_frames(data: Path) -> None:
    root = data / "ytobj"
    dataset = open_dataset(root, "youtube_objects", "all")
    assert dataset.video_names() == ["synth01-exit", "synth02-single"] and dataset.scorable
    single = dataset.video("synth02-single")
    assert len(single.frame_names) == 9 and sorted(single.annotation_paths) == ["00001", "00004", "00007"]
    assert single.scored_frames == (1, 4, 7)
    assert single.object_starts == starts_of(root, single.name) == {1: 1}, "starts at the first annotated frame"
    assert set(np.unique(read_seed_mask(single, 1))) == {0, 1}
    two = dataset.video("synth01-exit")
    assert two.object_starts == starts_of(root, two.name) and two.num_objects == 2
    assert set(np.unique(read_labels(two, 4))) <= {0, 1, 2}
    message = raised(read_labels, single, 2)
    assert str(root / "Annotations" / "synth02-single" / "00002.png") in message and "annotation is missing" in message


def test_youtube_objects_annotation_named_after_no_frame(data: Path, tmp_path: Path) -> None:
    root = copy(data / "ytobj", tmp_path)
    stray = root / "Annotations" / "synth02-single" / "frame_x.png"
    shutil.copy(root / "Annotations" / "synth02-single" / "00001.png", stray)
    message = raised(open_dataset(root, "youtube_objects", "all").video, "synth02-single")
    assert str(stray) in message and "named after no frame of video 'synth02-single'" in message


# ----------------------------------------------------------------------------------------------- folder


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_folder_video_file_and_frame_folder(data: Path, suffix: str) -> None:
    root = data / f"folder_{suffix[1:]}"
    dataset = open_dataset(root, "folder", "all")
    assert dataset.video_names() == ["clip", "walk"] and dataset.scorable is False
    walk = dataset.video("walk")
    assert walk.frame_names == [f"img_{index}" for index in range(1, 11)], "natural order: img_10 last"
    assert walk.object_starts == {1: 0} and walk.scored_frames == () and walk.has_ground_truth is False
    clip = dataset.video("clip")
    assert clip.frame_names == [f"{index:05d}" for index in range(10)]
    assert all(isinstance(frame, VideoFrame) and frame.video == root / f"clip{suffix}" for frame in clip.frame_paths)
    assert read_frames(clip).shape == (10, HEIGHT, WIDTH, 3) and frame_size(clip.frame_paths[0]) == (HEIGHT, WIDTH)
    assert clip.object_starts == starts_of(root, "clip") and clip.object_starts[3] >= LATE_START
    assert set(np.unique(read_seed_mask(clip, clip.object_starts[3]))) == {0, 3}
    assert open_dataset(root, "folder", "walk").video_names() == ["walk"]


def test_video_file_frames_in_any_order(tmp_path: Path) -> None:
    """Frame i is frame i whether read forwards, backwards or after another file (the decoder rewinds)."""
    images = [np.full((HEIGHT, WIDTH, 3), 20 * index + 10, np.uint8) for index in range(8)]
    write_video_file(tmp_path / "ramp.avi", images)
    write_video_file(tmp_path / "other.avi", images[::-1])
    ramp = [VideoFrame(tmp_path / "ramp.avi", index) for index in range(8)]
    other = VideoFrame(tmp_path / "other.avi", 0)
    for index in (5, 2, 7, 0, 7):
        assert abs(float(read_frame(ramp[index]).mean()) - (20 * index + 10)) < 4
        assert abs(float(read_frame(other).mean()) - 150) < 4
    assert str(ramp[3]) == f"{tmp_path / 'ramp.avi'} (frame 00003)"
    message = raised(read_frame, VideoFrame(tmp_path / "ramp.avi", 8))
    assert "ramp.avi (frame 00008)" in message and "cannot be decoded" in message


def test_folder_video_file_opencv_cannot_decode(data: Path, tmp_path: Path) -> None:
    root = copy(data / "folder_avi", tmp_path)
    (root / "annotations" / "broken").mkdir()
    (root / "broken.mp4").write_bytes(b"not a video at all")
    before = files(root)
    message = raised(open_dataset(root, "folder", "all").video, "broken")
    assert str(root / "broken.mp4") in message and "OpenCV cannot decode" in message
    writer = cv2.VideoWriter(str(root / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    writer.release()
    message = raised(open_dataset(root, "folder", "all").video, "empty")
    assert str(root / "empty.avi") in message
    assert "video file has no frames" in message
    assert files(root) == before | {root / "empty.avi"}, "nothing extracted or left behind"


def test_folder_video_without_annotated_frame(data: Path, tmp_path: Path) -> None:
    root = copy(data / "folder_avi", tmp_path)
    shutil.rmtree(root / "annotations" / "walk")
    message = raised(open_dataset(root, "folder", "all").video, "walk")
    assert str(root / "annotations" / "walk") in message and "has no annotated frame" in message


def test_folder_annotation_named_after_no_frame(data: Path, tmp_path: Path) -> None:
    root = copy(data / "folder_avi", tmp_path)
    stray = root / "annotations" / "clip" / "00010.png"
    shutil.copy(root / "annotations" / "clip" / "00000.png", stray)
    message = raised(open_dataset(root, "folder", "all").video, "clip")
    assert str(stray) in message and "named after no frame" in message and "00000 ... 00009" in message


def test_folder_frames_of_different_sizes_and_unknown_split(data: Path, tmp_path: Path) -> None:
    root = copy(data / "folder_avi", tmp_path)
    odd = root / "walk" / "img_4.png"
    assert cv2.imwrite(str(odd), np.zeros((HEIGHT, WIDTH + 4, 3), np.uint8))
    message = raised(read_frames, open_dataset(root, "folder", "all").video("walk"))
    assert str(odd) in message and f"frame size {WIDTH + 4}x{HEIGHT} differs" in message
    message = raised(open_dataset(root, "folder", "nope").video_names)
    assert str(root) in message and "neither 'all' nor a video" in message


def test_folder_two_sources_of_one_name(data: Path, tmp_path: Path) -> None:
    root = copy(data / "folder_avi", tmp_path)
    shutil.copy(root / "clip.avi", root / "clip.mkv")
    message = raised(open_dataset(root, "folder", "all").video_names)
    assert str(root) in message and "two videos are named 'clip'" in message


# ----------------------------------------------------------------------------------------------- all layouts


def test_unknown_layout_lists_every_layout(tmp_path: Path) -> None:
    message = raised(open_dataset, tmp_path, "kitti", "all")
    assert "unknown dataset layout 'kitti'" in message
    assert all(layout in message for layout in ("davis2017", "davis2016", "youtube_vos", "segtrack_v2",
                                                 "youtube_objects", "folder"))


def test_layout_defaults() -> None:
    assert set(LAYOUT_DEFAULTS) == set(LAYOUTS)
    for layout in ("segtrack_v2", "youtube_objects"):
        assert LAYOUT_DEFAULTS[layout]["graph"] == {"alpha": 0.1, "beta": 0.9}
    for layout in ("davis2017", "davis2016", "youtube_vos"):
        assert LAYOUT_DEFAULTS[layout]["graph"] == {"alpha": 0.7, "beta": 0.3}
    copied = layout_defaults("segtrack_v2")
    copied["graph"]["alpha"] = 0.5
    assert LAYOUT_DEFAULTS["segtrack_v2"]["graph"]["alpha"] == 0.1, "a copy"
    assert "unknown dataset layout" in raised(layout_defaults, "kitti")


def test_davis_objects_start_at_frame_zero(tmp_path: Path) -> None:
    generate(tmp_path / "davis", seed=1, num_videos=1, frames=(6, 6), height=HEIGHT, width=WIDTH)
    video = open_dataset(tmp_path / "davis", "davis2017", "val").videos()[0]
    labels, num_objects = read_first_mask(video)
    assert video.object_starts == {label: 0 for label in range(1, num_objects + 1)}
    assert video.num_objects == num_objects and video.seed_frames == (0,)
    assert video.scored_frames == tuple(range(6)) and video.has_ground_truth
    assert np.array_equal(read_seed_mask(video, 0), labels)


def test_binary_and_grey_id_masks(tmp_path: Path) -> None:
    """Binary (0/255, anti-aliased) masks are object 1; grey id maps and colour masks are refused by name."""
    grey = np.zeros((HEIGHT, WIDTH), np.uint8)
    grey[5:20, 5:30] = 255
    grey[5, 5] = 200
    path = tmp_path / "binary.png"
    Image.fromarray(grey, mode="L").save(path)
    assert set(np.unique(read_annotation(path, "youtube_objects"))) == {0, 1}
    grey[30:40, 40:60] = 2
    Image.fromarray(np.minimum(grey, 2), mode="L").save(path)
    message = raised(read_annotation, path, "folder")
    assert str(path) in message and "save a multi-object mask as a palette PNG" in message
    colour = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    colour[..., 0] = 255
    Image.fromarray(colour).save(path)
    assert str(path) in raised(read_annotation, path, "segtrack_v2")
