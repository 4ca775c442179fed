"""Tiny datasets in the other layouts (YouTube-VOS, SegTrack-v2, YouTube-Objects, a user's folder), rendered from
the synthetic demo's scenes (stg.datasets.synthetic), so tests and users can try a layout without a download.

Each writer builds its dataset in a temporary sibling and renames it into place (stg.atomic), refuses to replace
anything but an earlier synthetic dataset, and records what each video shows in `synthetic.json` at the root (which
no reader lists as a video): frame count, object ids and the frame index where each object starts. Writers return
the video names in the order the layout's reader lists them. Frames are 64x96 by default.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from stg.atomic import atomic_directory
from stg.datasets.images import natural_key
from stg.datasets.synthetic import (
    METADATA_FILE,
    MIN_FRAMES,
    Scene,
    _check_replaceable,
    _write_jpeg,
    build_scene,
    render_frame,
    video_name,
)
from stg.palette import write_palette_png

HEIGHT, WIDTH = 64, 96
LATE_START = 3  # the late object of YouTube-VOS and folder data enters at this frame or the next it is visible in
_MIN_VISIBLE = 12  # pixels an object must show where it starts
FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".mov": "mp4v", ".mkv": "MJPG"}  # codecs OpenCV both writes and reads
TRIPLE, OCCLUSION, SINGLE, EXIT = 3, 0, 2, 1  # scene indices of stg.datasets.synthetic's special videos
Rendered = list[tuple[np.ndarray, np.ndarray]]  # per frame: RGB image, label map


# ----------------------------------------------------------------------------------------------- scenes


def _scene(index: int, seed: int, num_frames: int, height: int, width: int) -> Scene:
    if num_frames < MIN_FRAMES:
        raise ValueError(f"need at least {MIN_FRAMES} frames, got {num_frames}")
    return build_scene(index, seed=seed, frames=(num_frames, num_frames), height=height, width=width)


def _render(scene: Scene) -> Rendered:
    return [render_frame(scene, index) for index in range(scene.num_frames)]


def _hidden_before(scene: Scene, label: int, start: int) -> Scene:
    """The scene with object `label` far outside the frame before `start`, so it enters there."""
    objects = []
    for obj in scene.objects:
        if obj.label == label:
            centre = obj.centre.copy()
            centre[:start, 0] = -10.0 * scene.width
            obj = replace(obj, centre=centre)
        objects.append(obj)
    return replace(scene, objects=tuple(objects))


def _late_entry(scene: Scene) -> tuple[Rendered, int, int]:
    """The scene rendered with its highest-labelled object entering at LATE_START (or the first frame after it
    where the object shows); returns the frames, the late label and its start."""
    label = max(obj.label for obj in scene.objects)
    for start in range(LATE_START, scene.num_frames):
        rendered = _render(_hidden_before(scene, label, start))
        if (rendered[start][1] == label).sum() >= _MIN_VISIBLE:
            return rendered, label, start
    raise RuntimeError(f"object {label} of synthetic video {scene.name} is never visible after frame {LATE_START}")


def _starts(rendered: Rendered, frames: list[int] | None = None) -> dict[int, int]:
    """Object id -> first frame (among `frames`, default all) whose labels hold it."""
    starts: dict[int, int] = {}
    for index in frames if frames is not None else range(len(rendered)):
        for label in np.unique(rendered[index][1]):
            if label:
                starts.setdefault(int(label), index)
    return dict(sorted(starts.items()))


# ----------------------------------------------------------------------------------------------- files


def _image(path: Path, image: np.ndarray) -> None:
    """A frame in the format its suffix names (JPEG through the demo's byte-stable encoder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jpg":
        _write_jpeg(path, image)
        return
    ok, encoded = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"{path}: encoding failed")
    path.write_bytes(encoded.tobytes())


def _palette(path: Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_palette_png(path, labels.astype(np.uint8))


def _binary(path: Path, mask: np.ndarray) -> None:
    """A binary greyscale mask, 0 / 255."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(path)


def write_video_file(path: Path, images: list[np.ndarray], fps: float = 10.0) -> None:
    """RGB frames as a video file with a codec OpenCV both writes and reads (FOURCC by suffix)."""
    fourcc = FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise ValueError(f"{path}: no codec for {path.suffix} (known: {', '.join(FOURCC)})")
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write {fourcc} video")
    try:
        for image in images:
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def _write_record(root: Path, layout: str, settings: dict, videos: dict[str, dict]) -> None:
    record = {"generator": "stg.datasets.synthetic_layouts", "layout": layout, **settings, "videos": videos}
    (root / METADATA_FILE).write_text(json.dumps(record, indent=2) + "\n")


def _video_record(rendered: Rendered, starts: dict[int, int], **extra) -> dict:
    return {"frames": len(rendered), "objects": sorted(starts), "starts": {str(k): v for k, v in starts.items()},
            **extra}


# ----------------------------------------------------------------------------------------------- YouTube-VOS


def _write_youtube_video(folder: Path, name: str, rendered: Rendered, step: int, seeds_only: bool) -> tuple[dict, dict]:
    """Frames named every `step`-th index; annotations on every frame, or (valid / test) only where an object
    starts, holding only the objects that start there. Returns (meta.json entry, record)."""
    names = [f"{index * step:05d}" for index in range(len(rendered))]
    starts = _starts(rendered)
    for index, (image, labels) in enumerate(rendered):
        _image(folder / "JPEGImages" / name / f"{names[index]}.jpg", image)
        starting = [label for label, start in starts.items() if start == index]
        if not seeds_only:
            _palette(folder / "Annotations" / name / f"{names[index]}.png", labels)
        elif starting:
            _palette(folder / "Annotations" / name / f"{names[index]}.png", np.where(np.isin(labels, starting),
                                                                                   labels, 0))
    objects = {}
    for label, start in starts.items():
        shown = names[start:] if seeds_only else [names[i] for i, (_, mask) in enumerate(rendered)
                                                  if (mask == label).any()]
        objects[str(label)] = {"category": "synthetic", "frames": shown}
    return {"objects": objects}, _video_record(rendered, starts, frame_names=names)


def write_youtube_vos(root: str | Path, *, split: str = "valid", num_videos: int = 2, num_frames: int = 8,
                      height: int = HEIGHT, width: int = WIDTH, seed: int = 0, step: int = 5) -> list[str]:
    """`<root>/<split>/` with meta.json: video 0 has an object entering at frame >= LATE_START; valid / test are
    annotated only where objects start, other splits on every frame."""
    scenes = [TRIPLE, OCCLUSION, SINGLE, EXIT][:num_videos]
    seeds_only = split.startswith(("valid", "test"))
    root = Path(root)
    _check_replaceable(root)
    meta, records = {}, {}
    with atomic_directory(root) as staging:
        for position, index in enumerate(scenes):
            scene = _scene(index, seed, num_frames, height, width)
            rendered = _late_entry(scene)[0] if position == 0 else _render(scene)
            meta[scene.name], records[scene.name] = _write_youtube_video(staging / split, scene.name, rendered, step,
                                                                         seeds_only)
        (staging / split / "meta.json").write_text(json.dumps({"videos": meta}, indent=1) + "\n")
        _write_record(staging, "youtube_vos", {"split": split, "seed": seed}, records)
    return [video_name(index) for index in scenes]


# ----------------------------------------------------------------------------------------------- SegTrack-v2


def write_segtrack_v2(root: str | Path, *, num_frames: int = 8, height: int = HEIGHT, width: int = WIDTH,
                      seed: int = 0) -> list[str]:
    """Two sequences: one object with PNG frames and masks in GroundTruth/<seq>/, and two objects with BMP frames
    and one sub-folder of binary masks per object (GroundTruth/<seq>/1/, /2/). Frames are named <seq>_00000."""
    root = Path(root)
    _check_replaceable(root)
    records = {}
    with atomic_directory(root) as staging:
        for index, suffix in ((SINGLE, ".png"), (OCCLUSION, ".bmp")):
            scene = _scene(index, seed, num_frames, height, width)
            rendered = _render(scene)
            labels = sorted(obj.label for obj in scene.objects)
            for frame, (image, label_map) in enumerate(rendered):
                stem = f"{scene.name}_{frame:05d}"
                _image(staging / "JPEGImages" / scene.name / f"{stem}{suffix}", image)
                for label in labels:
                    folder = staging / "GroundTruth" / scene.name / (str(label) if len(labels) > 1 else "")
                    _binary(folder / f"{stem}.png", label_map == label)
            records[scene.name] = _video_record(rendered, _starts(rendered), frame_suffix=suffix)
        _write_record(staging, "segtrack_v2", {"seed": seed}, records)
    return sorted(records, key=natural_key)


# ----------------------------------------------------------------------------------------------- YouTube-Objects


def write_youtube_objects(root: str | Path, *, num_frames: int = 9, annotated: tuple[int, ...] = (1, 4, 7),
                          height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> list[str]:
    """Two sequences annotated on the frames `annotated` only: one object as binary greyscale masks, two objects
    as palette masks."""
    root = Path(root)
    _check_replaceable(root)
    records = {}
    with atomic_directory(root) as staging:
        for index, palette in ((SINGLE, False), (EXIT, True)):
            scene = _scene(index, seed, num_frames, height, width)
            rendered = _render(scene)
            for frame, (image, labels) in enumerate(rendered):
                _image(staging / "JPEGImages" / scene.name / f"{frame:05d}.jpg", image)
                if frame in annotated:
                    mask_path = staging / "Annotations" / scene.name / f"{frame:05d}.png"
                    if palette:
                        _palette(mask_path, labels)
                    else:
                        _binary(mask_path, labels != 0)
            starts = _starts(rendered, [frame for frame in annotated if frame < len(rendered)])
            records[scene.name] = _video_record(rendered, starts, annotated=list(annotated))
        _write_record(staging, "youtube_objects", {"seed": seed}, records)
    return sorted(records, key=natural_key)


# ----------------------------------------------------------------------------------------------- folder


def write_folder(root: str | Path, *, video_suffix: str = ".avi", num_frames: int = 10, height: int = HEIGHT,
                 width: int = WIDTH, seed: int = 0) -> list[str]:
    """A user's folder: `walk/` (frames img_1.png ... img_<n>.png, one object, a binary mask on img_1) and a video
    file `clip<video_suffix>` (three objects, the third entering at frame >= LATE_START; palette masks of frame
    00000 and of its start frame, each holding the objects starting there)."""
    root = Path(root)
    _check_replaceable(root)
    records = {}
    with atomic_directory(root) as staging:
        rendered = _render(_scene(SINGLE, seed, num_frames, height, width))
        for frame, (image, _) in enumerate(rendered):
            _image(staging / "walk" / f"img_{frame + 1}.png", image)
        _binary(staging / "annotations" / "walk" / "img_1.png", rendered[0][1] != 0)
        records["walk"] = _video_record(rendered, _starts(rendered, [0]))
        rendered, late, start = _late_entry(_scene(TRIPLE, seed, num_frames, height, width))
        write_video_file(staging / f"clip{video_suffix}", [image for image, _ in rendered])
        _palette(staging / "annotations" / "clip" / "00000.png", np.where(rendered[0][1] == late, 0, rendered[0][1]))
        _palette(staging / "annotations" / "clip" / f"{start:05d}.png", np.where(rendered[start][1] == late, late, 0))
        records["clip"] = _video_record(rendered, _starts(rendered), file=f"clip{video_suffix}")
        _write_record(staging, "folder", {"seed": seed, "video_suffix": video_suffix}, records)
    return sorted(records, key=natural_key)
