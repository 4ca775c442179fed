"""The fault corpus (issue 11): one table of bad inputs and faults, each run through the `stg` CLI.

Every case damages a fresh copy of a tiny synthetic dataset, of a finished store or of a config in its own
tmp_path and says which command to run, the file (or setting) the message must name, the problem phrase it
must contain and the output that must not appear. For every case: a non-zero exit, one error naming the file
and the problem, no Python traceback, and neither the output nor a temporary sibling of it (`.<name>.tmp-*`,
`.<name>.old-*`) nor anything else left in the output folder.

The stage commands run in-process through stg.cli.main (its stderr captured, an escaping exception being the
traceback the CLI would show); the config cases run Snakemake's dry run as a subprocess, as a user would, and
test_subprocess_cli_gives_the_same_answer checks that the real `stg` executable answers like main().
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image
from workflow_helpers import REPO

from stg.cli import main
from stg.palette import write_palette_png

SPLIT = "val"
PROGRESS = re.compile(r"^[\w -]+:\s+\d+%\|")  # a tqdm bar left on stderr (split at its carriage returns)
HEIGHT, WIDTH, FRAMES = 64, 96, 6


@dataclass(frozen=True)
class Fault:
    """What a case runs and what its answer must say."""

    argv: list[str]  # `stg` arguments, or a full command line when snakemake is set
    where: str  # the file, folder, setting or config key the message must name
    problem: str  # a phrase of the problem the message must contain
    out: Path  # the output that must not exist afterwards (or, with `existing`, be left as it was)
    snakemake: bool = False  # argv is a Snakemake command line, run in `cwd`
    cwd: Path | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)  # further phrases the message must contain
    existing: bool = False  # `out` is a user's file that was there before: it must be left untouched


@dataclass(frozen=True)
class Base:
    """Built once per module: the pristine dataset and finished stores that cases copy before damaging."""

    root: Path
    videos: list[str]
    flow: Path  # flow store of videos[0]
    warp: Path  # warp store of videos[0]
    other_flow: Path  # flow store of videos[1]


class Workspace:
    """One case's tmp_path: copies of the base dataset and stores, and the (empty) output folder."""

    def __init__(self, tmp_path: Path, base: Base) -> None:
        self.tmp, self.base = tmp_path, base
        self.video, self.other = base.videos
        self.out_dir = tmp_path / "out"
        self.out_dir.mkdir()
        self._root: Path | None = None

    # -------------------------------------------------------------------- dataset
    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = self.tmp / "data"
            shutil.copytree(self.base.root, self._root)
        return self._root

    @property
    def split_file(self) -> Path:
        return self.root / "ImageSets" / "2017" / f"{SPLIT}.txt"

    def frames_dir(self, video: str | None = None) -> Path:
        return self.root / "JPEGImages" / "480p" / (video or self.video)

    def annotations_dir(self, video: str | None = None) -> Path:
        return self.root / "Annotations" / "480p" / (video or self.video)

    def frame(self, index: int) -> Path:
        return sorted(self.frames_dir().glob("*.jpg"))[index]

    def annotation(self, index: int = 0) -> Path:
        return sorted(self.annotations_dir().glob("*.png"))[index]

    def common(self, video: str | None = None, root: Path | None = None) -> list[str]:
        return ["--dataset-root", str(root or self.root), "--split", SPLIT, "--video", video or self.video]

    # -------------------------------------------------------------------- stores and outputs
    def store(self, which: str) -> Path:
        """A private copy of a base store ('flow', 'warp' or 'other_flow')."""
        copy = self.tmp / "stores" / f"{which}.zarr"
        shutil.copytree(getattr(self.base, which), copy)
        return copy

    def out(self, name: str = "out.zarr") -> Path:
        return self.out_dir / name

    def results(self) -> Path:
        """A results folder scoring perfectly: every ground-truth PNG of the split copied."""
        results = self.tmp / "results"
        shutil.copytree(self.root / "Annotations" / "480p", results)
        return results

    def metrics(self, results: Path, out: Path | None = None) -> list[str]:
        return ["metrics", "--davis-root", str(self.root), "--results", str(results), "--set", SPLIT,
                "--out", str(out or self.out("scores")), "--processes", "1"]


CASES: dict[str, Callable[[Workspace], Fault]] = {}


def case(name: str) -> Callable[[Callable[[Workspace], Fault]], Callable[[Workspace], Fault]]:
    def register(function: Callable[[Workspace], Fault]) -> Callable[[Workspace], Fault]:
        assert name not in CASES, name
        CASES[name] = function
        return function
    return register


def jpeg(path: Path, height: int = HEIGHT, width: int = WIDTH) -> Path:
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def truncate(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def flow_of(ws: Workspace) -> list[str]:
    return ["flow", *ws.common(), "--out", str(ws.out())]


def warp_of(ws: Workspace, flow: Path | None = None) -> list[str]:
    return ["warp", *ws.common(), "--flow", str(flow or ws.store("flow")), "--out", str(ws.out())]


# ------------------------------------------------------------------------------------------------ dataset


@case("missing dataset root")
def _(ws: Workspace) -> Fault:
    root = ws.tmp / "no-such-dataset"
    return Fault(["flow", *ws.common(root=root), "--out", str(ws.out())], str(root), "dataset root folder is missing",
                 ws.out())


@case("missing dataset root, layout given")
def _(ws: Workspace) -> Fault:
    root = ws.tmp / "no-such-dataset"
    return Fault(["flow", *ws.common(root=root), "--layout", "davis2017", "--out", str(ws.out())], str(root),
                 "dataset root folder is missing", ws.out())


@case("dataset root is a file")
def _(ws: Workspace) -> Fault:
    root = ws.tmp / "data.tar"
    root.write_bytes(b"an archive, not the unpacked dataset")
    return Fault(["flow", *ws.common(root=root), "--out", str(ws.out())], str(root), "dataset root is a file",
                 ws.out())


@case("missing split file")
def _(ws: Workspace) -> Fault:
    ws.split_file.unlink()
    return Fault(flow_of(ws), str(ws.root), f"no split file for '{SPLIT}'", ws.out(),
                 extra=(f"ImageSets/2017/{SPLIT}.txt",))


@case("missing split file, layout given")
def _(ws: Workspace) -> Fault:
    ws.split_file.unlink()
    return Fault(["flow", *ws.common(), "--layout", "davis2017", "--out", str(ws.out())], str(ws.split_file),
                 f"split file for split '{SPLIT}' is missing", ws.out())


@case("split lists an absent video")
def _(ws: Workspace) -> Fault:
    ws.split_file.write_text(ws.split_file.read_text() + "ghost\n")
    return Fault(["flow", *ws.common("ghost"), "--out", str(ws.out())], str(ws.frames_dir("ghost")),
                 "image folder of sequence 'ghost' is missing", ws.out())


@case("video not listed in the split")
def _(ws: Workspace) -> Fault:
    return Fault(["flow", *ws.common("not-listed"), "--out", str(ws.out())], str(ws.split_file),
                 f"sequence 'not-listed' is not listed in split '{SPLIT}'", ws.out())


@case("video name with '/' in the split file")
def _(ws: Workspace) -> Fault:
    ws.split_file.write_text(ws.split_file.read_text() + "sub/video\n")
    return Fault(flow_of(ws), str(ws.split_file), "contains '/'", ws.out(), extra=("'sub/video'",))


@case("empty split file")
def _(ws: Workspace) -> Fault:
    ws.split_file.write_text("\n  \n")
    return Fault(flow_of(ws), str(ws.split_file), "split file is empty", ws.out())


@case("split file not UTF-8")
def _(ws: Workspace) -> Fault:
    ws.split_file.write_bytes(b"caf\xe9\n")
    return Fault(flow_of(ws), str(ws.split_file), "not UTF-8", ws.out())


@case("DAVIS 2016 split lists a missing frame")
def _(ws: Workspace) -> Fault:
    frames = sorted(ws.frames_dir().glob("*.jpg"))
    lines = [f"/JPEGImages/480p/{ws.video}/{f.name} /Annotations/480p/{ws.video}/{f.stem}.png" for f in frames]
    split_file = ws.root / "ImageSets" / "480p" / f"{SPLIT}.txt"
    split_file.parent.mkdir(parents=True)
    split_file.write_text("\n".join(lines) + "\n")
    ws.split_file.unlink()
    frames[2].unlink()
    return Fault(flow_of(ws), str(frames[2]), f"frame listed in {split_file} is missing", ws.out())


@case("video folder without frames")
def _(ws: Workspace) -> Fault:
    for path in ws.frames_dir().iterdir():
        path.unlink()
    return Fault(flow_of(ws), str(ws.frames_dir()), "video is empty", ws.out(), extra=("it is empty",))


@case("frames only with an unsupported extension")
def _(ws: Workspace) -> Fault:
    for path in ws.frames_dir().iterdir():
        path.rename(path.with_suffix(".bmp"))
    return Fault(flow_of(ws), str(ws.frames_dir()), "no frames named *.jpg", ws.out(),
                 extra=(f"it holds {FRAMES} other entries", "00000.bmp"))


@case("duplicate frame stems (.jpg + .JPG)")
def _(ws: Workspace) -> Fault:
    frame = ws.frame(2)
    shutil.copy(frame, frame.with_suffix(".JPG"))
    return Fault(flow_of(ws), str(ws.frames_dir()), f"share the name '{frame.stem}'", ws.out(),
                 extra=(f"{frame.stem}.JPG", frame.name))


@case("truncated JPEG")
def _(ws: Workspace) -> Fault:
    frame = truncate(ws.frame(2))
    return Fault(flow_of(ws), str(frame), "truncated JPEG", ws.out())


@case("corrupt (garbage) JPEG")
def _(ws: Workspace) -> Fault:
    frame = ws.frame(3)
    frame.write_bytes(np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    return Fault(flow_of(ws), str(frame), "frame image is corrupt or not an image", ws.out())


@case("corrupt first frame (read for its size)")
def _(ws: Workspace) -> Fault:
    frame = ws.frame(0)
    frame.write_bytes(b"not a jpeg at all")
    return Fault(warp_of(ws), str(frame), "frame image is corrupt or not an image", ws.out())


@case("frames of different sizes")
def _(ws: Workspace) -> Fault:
    frame = jpeg(ws.frame(3), HEIGHT // 2, WIDTH // 2)
    return Fault(flow_of(ws), str(frame), f"frame size {WIDTH // 2}x{HEIGHT // 2} differs from the first frame's "
                 f"{WIDTH}x{HEIGHT}", ws.out())


@case("missing first-frame annotation")
def _(ws: Workspace) -> Fault:
    first = ws.annotation(0)
    first.unlink()
    return Fault(flow_of(ws), str(first), "annotation is missing", ws.out())


@case("missing annotation folder")
def _(ws: Workspace) -> Fault:
    shutil.rmtree(ws.annotations_dir())
    return Fault(flow_of(ws), str(ws.annotations_dir()), "annotation folder of sequence", ws.out())


# ------------------------------------------------------------------------------ first-frame annotations


@case("truncated PNG annotation")
def _(ws: Workspace) -> Fault:
    first = truncate(ws.annotation(0), 0.7)
    return Fault(warp_of(ws), str(first), "truncated PNG", ws.out())


@case("garbage PNG annotation")
def _(ws: Workspace) -> Fault:
    first = ws.annotation(0)
    first.write_bytes(b"GIF89a not a png")
    return Fault(warp_of(ws), str(first), "cannot be read as a PNG image", ws.out())


@case("RGB annotation")
def _(ws: Workspace) -> Fault:
    first = ws.annotation(0)
    labels = np.asarray(Image.open(first))
    Image.fromarray(np.stack([labels * 40] * 3, axis=-1).astype(np.uint8), mode="RGB").save(first)
    return Fault(warp_of(ws), str(first), "single-channel PNG, got mode RGB", ws.out())


@case("annotation size differs from the frame")
def _(ws: Workspace) -> Fault:
    first = ws.annotation(0)
    labels = np.zeros((HEIGHT // 2, WIDTH // 2), np.uint8)
    labels[4:20, 4:20] = 1
    write_palette_png(first, labels)
    return Fault(warp_of(ws), str(first), f"mask size {WIDTH // 2}x{HEIGHT // 2} differs from the image size "
                 f"{WIDTH}x{HEIGHT}", ws.out())


@case("16-bit non-binary annotation")
def _(ws: Workspace) -> Fault:
    first = ws.annotation(0)
    values = np.zeros((HEIGHT, WIDTH), np.uint16)
    values[5:20, 5:30], values[30:50, 40:80] = 1000, 2000
    Image.fromarray(values).save(first)
    return Fault(warp_of(ws), str(first), "16-bit greyscale mask", ws.out(), extra=("[0, 1000, 2000]",))


@case("first annotation without objects")
def _(ws: Workspace) -> Fault:
    first = ws.annotation(0)
    write_palette_png(first, np.zeros((HEIGHT, WIDTH), np.uint8))
    return Fault(warp_of(ws), str(first), "contains no object", ws.out())


# ------------------------------------------------------------------------------------------------ stores


@case("flow store missing a chunk")
def _(ws: Workspace) -> Fault:
    flow = ws.store("flow")
    (flow / "backward" / "c" / "2" / "0" / "0" / "0").unlink()
    return Fault(warp_of(ws, flow), str(flow), "chunk files are missing", ws.out(),
                 extra=("array 'backward'", "frame 2", "damaged store"))


@case("flow store with a truncated chunk")
def _(ws: Workspace) -> Fault:
    flow = ws.store("flow")
    chunk = flow / "forward" / "c" / "1" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:20])
    return Fault(warp_of(ws, flow), str(flow), "the record says", ws.out(), extra=("array 'forward'", "frame 1"))


@case("flow store chunk corrupt at the same size (fails mid-write)")
def _(ws: Workspace) -> Fault:
    flow = ws.store("flow")
    chunk = flow / "forward" / "c" / "3" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[8:] = np.random.default_rng(2).integers(0, 256, len(data) - 8, dtype=np.uint8).tobytes()
    chunk.write_bytes(bytes(data))  # the size check at open passes: the decode of frame 3 fails, the warp half done
    return Fault(warp_of(ws, flow), str(flow), "cannot be decoded", ws.out(), extra=("array 'forward'", "frame 3"))


@case("warp store with damaged array metadata")
def _(ws: Workspace) -> Fault:
    warp = ws.store("warp")
    (warp / "priors" / "zarr.json").write_bytes(b"\xeb\x00 not json")
    return Fault(["propagate", "--warp", str(warp), "--out", str(ws.out())], str(warp), "zarr.json has 11 bytes",
                 ws.out(), extra=("array 'priors'", "the record says"))


@case("flow store missing")
def _(ws: Workspace) -> Fault:
    flow = ws.tmp / "stores" / "never-written.zarr"
    return Fault(warp_of(ws, flow), str(flow), "store is missing", ws.out())


@case("a regular file where the flow store should be")
def _(ws: Workspace) -> Fault:
    flow = ws.tmp / "stores" / "a-file.zarr"
    flow.parent.mkdir(parents=True, exist_ok=True)
    flow.write_text("not a store")
    return Fault(warp_of(ws, flow), str(flow), "is a file, not a store folder", ws.out())


@case("flow store with unreadable zarr.json")
def _(ws: Workspace) -> Fault:
    flow = ws.store("flow")
    (flow / "zarr.json").write_text("{ not json")
    return Fault(warp_of(ws, flow), str(flow), "zarr.json cannot be read", ws.out())


@case("warp store missing an array")
def _(ws: Workspace) -> Fault:
    warp = ws.store("warp")
    shutil.rmtree(warp / "priors")
    return Fault(["propagate", "--warp", str(warp), "--out", str(ws.out())], str(warp), "missing", ws.out(),
                 extra=("array 'priors'",))


@case("store of the wrong stage")
def _(ws: Workspace) -> Fault:
    warp = ws.store("warp")
    return Fault(warp_of(ws, warp), str(warp), "expected a 'flow' store, found a 'warp' store", ws.out())


@case("store of another video")
def _(ws: Workspace) -> Fault:
    flow = ws.store("other_flow")
    return Fault(warp_of(ws, flow), str(flow), f"store is of video '{ws.other}', not '{ws.video}'", ws.out())


@case("label store of the wrong stage for results")
def _(ws: Workspace) -> Fault:
    warp = ws.store("warp")
    return Fault(["results", "--dataset-root", str(ws.root), "--split", SPLIT, "--labels", str(warp),
                  "--out", str(ws.out("run"))], str(warp), "expected a 'labels' store", ws.out("run"))


# ------------------------------------------------------------------------------------------------ settings


@case("--settings unknown key")
def _(ws: Workspace) -> Fault:
    return Fault([*flow_of(ws), "--settings", json.dumps({"bogus": 1})], "--settings: key 'stages.flow'",
                 "'bogus' was unexpected", ws.out())


@case("--settings wrong type")
def _(ws: Workspace) -> Fault:
    return Fault([*warp_of(ws), "--settings", json.dumps({"fb_alpha": "high"})],
                 "--settings: key 'stages.warp.fb_alpha'", "'high' is not of type 'number'", ws.out())


@case("--settings not JSON")
def _(ws: Workspace) -> Fault:
    return Fault([*flow_of(ws), "--settings", "{backend: dis"], "--settings", "not valid JSON", ws.out())


@case("--settings not an object")
def _(ws: Workspace) -> Fault:
    return Fault([*flow_of(ws), "--settings", "[1, 2]"], "--settings: key 'stages.flow'",
                 "[1, 2] is not of type 'object'", ws.out())


@case("--settings @file missing")
def _(ws: Workspace) -> Fault:
    path = ws.tmp / "no-settings.yaml"
    return Fault([*flow_of(ws), "--settings", f"@{path}"], str(path), "settings file is missing", ws.out())


@case("--settings @file not YAML")
def _(ws: Workspace) -> Fault:
    path = ws.tmp / "settings.yaml"
    path.write_text("backend: [dis\n")
    return Fault([*flow_of(ws), "--settings", f"@{path}"], str(path), "not valid YAML", ws.out())


@case("--settings @file not UTF-8")
def _(ws: Workspace) -> Fault:
    path = ws.tmp / "settings.yaml"
    path.write_bytes(b"backend: d\xefs\n")
    return Fault([*flow_of(ws), "--settings", f"@{path}"], str(path), "not UTF-8", ws.out())


@case("warp previous_pass without --previous-labels")
def _(ws: Workspace) -> Fault:
    return Fault([*warp_of(ws), "--settings", json.dumps({"source": "previous_pass"})], "--previous-labels",
                 "needs the previous pass's label store", ws.out())


# ------------------------------------------------------------------------------------------------ weights


def segment_of(ws: Workspace, weights: Path) -> list[str]:
    settings = {"backend": "deeplab", "deeplab": {"weights": str(weights)}}
    return ["segment", *ws.common(), "--detect", str(ws.tmp / "detect.zarr"), "--warp", str(ws.tmp / "warp.zarr"),
            "--device", "cpu", "--settings", json.dumps(settings), "--out", str(ws.out())]


@case("segment weights path missing")
def _(ws: Workspace) -> Fault:
    weights = ws.tmp / "no-such-model.pt"
    return Fault(segment_of(ws, weights), str(weights), "weights file is missing", ws.out(),
                 extra=("stages.segment.deeplab.weights",))


@case("segment checkpoint corrupt")
def _(ws: Workspace) -> Fault:
    weights = ws.tmp / "model.pt"
    weights.write_bytes(b"PK\x03\x04 this is no torch checkpoint" * 10)
    return Fault(segment_of(ws, weights), str(weights), "cannot read as a torch checkpoint", ws.out(),
                 extra=("stages.segment.deeplab.weights",))


def detect_of(ws: Workspace, weights: Path) -> list[str]:
    settings = {"backend": "yolox", "yolox": {"weights": str(weights)}}
    return ["detect", *ws.common(), "--warp", str(ws.tmp / "warp.zarr"), "--device", "cpu",
            "--settings", json.dumps(settings), "--out", str(ws.out())]


@case("detect weights path missing")
def _(ws: Workspace) -> Fault:
    weights = ws.tmp / "no-such-model.onnx"
    return Fault(detect_of(ws, weights), str(weights), "weights file is missing", ws.out(),
                 extra=("stages.detect.yolox.weights",))


@case("detect weights not an ONNX model")
def _(ws: Workspace) -> Fault:
    weights = ws.tmp / "model.onnx"
    weights.write_bytes(b"\x00\x01garbage" * 50)
    return Fault(detect_of(ws, weights), str(weights), "cannot load as an ONNX model", ws.out(),
                 extra=("stages.detect.yolox.weights",))


# ------------------------------------------------------------------------------------------------ outputs


@case("--out under a regular file")
def _(ws: Workspace) -> Fault:
    blocker = ws.out_dir / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "sub" / "flow.zarr"
    return Fault(["flow", *ws.common(), "--out", str(out)], str(blocker), "is a file, not a folder", out)


@case("metrics --out under a regular file")
def _(ws: Workspace) -> Fault:
    blocker = ws.out_dir / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "scores"
    return Fault(ws.metrics(ws.results(), out), str(blocker), "is a file, not a folder", out)


@case("stage --out is an existing file")
def _(ws: Workspace) -> Fault:
    out = ws.out_dir / "notes.txt"
    out.write_text("a user's file that a store must not replace")
    return Fault(["propagate", "--warp", str(ws.store("warp")), "--out", str(out)], str(out),
                 "--out is an existing file, not a folder", out, existing=True)


@case("metrics --out is an existing file")
def _(ws: Workspace) -> Fault:
    out = ws.out_dir / "scores.txt"
    out.write_text("a user's file")
    return Fault(ws.metrics(ws.results(), out), str(out), "--out is an existing file, not a folder", out,
                 existing=True)


# ------------------------------------------------------------------------------------------------ metrics


@case("metrics: results folder missing a sequence")
def _(ws: Workspace) -> Fault:
    results = ws.results()
    shutil.rmtree(results / ws.other)
    return Fault(ws.metrics(results), str(results / ws.other), f"result folder of sequence '{ws.other}' is missing",
                 ws.out("scores"))


@case("metrics: results folder missing")
def _(ws: Workspace) -> Fault:
    results = ws.tmp / "no-results"
    return Fault(ws.metrics(results), str(results), "results folder is missing", ws.out("scores"))


@case("metrics: result frame missing")
def _(ws: Workspace) -> Fault:
    results = ws.results()
    result = sorted((results / ws.video).glob("*.png"))[2]
    result.unlink()
    return Fault(ws.metrics(results), str(result), "result frame is missing", ws.out("scores"))


@case("metrics: result PNG of the wrong size")
def _(ws: Workspace) -> Fault:
    results = ws.results()
    result = sorted((results / ws.video).glob("*.png"))[2]
    write_palette_png(result, np.zeros((HEIGHT // 2, WIDTH // 2), np.uint8))
    return Fault(ws.metrics(results), str(result), f"result size {WIDTH // 2}x{HEIGHT // 2} differs from the ground "
                 f"truth's {WIDTH}x{HEIGHT}", ws.out("scores"))


@case("metrics: result label beyond K")
def _(ws: Workspace) -> Fault:
    results = ws.results()
    result = sorted((results / ws.video).glob("*.png"))[1]
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    labels[10:20, 10:20] = 9
    write_palette_png(result, labels)
    return Fault(ws.metrics(results), str(result), "label 9 is above the sequence's", ws.out("scores"))


@case("metrics: truncated result PNG")
def _(ws: Workspace) -> Fault:
    results = ws.results()
    result = truncate(sorted((results / ws.video).glob("*.png"))[3], 0.8)
    return Fault(ws.metrics(results), str(result), "truncated PNG", ws.out("scores"))


@case("metrics: 16-bit non-binary result PNG")
def _(ws: Workspace) -> Fault:
    results = ws.results()
    result = sorted((results / ws.video).glob("*.png"))[2]
    values = np.zeros((HEIGHT, WIDTH), np.uint16)
    values[5:20, 5:30], values[30:50, 40:80] = 300, 600
    Image.fromarray(values).save(result)
    return Fault(ws.metrics(results), str(result), "16-bit greyscale mask", ws.out("scores"),
                 extra=("[0, 300, 600]",))


@case("metrics: ground-truth annotation missing")
def _(ws: Workspace) -> Fault:
    results = ws.results()
    gt = ws.annotation(2)
    gt.unlink()
    return Fault(ws.metrics(results), str(gt), "ground-truth annotation of a scored frame is missing",
                 ws.out("scores"))


# ------------------------------------------------------------------------------------- other commands


@case("train-segmenter --data not a list")
def _(ws: Workspace) -> Fault:
    out = ws.out("model")
    return Fault(["train-segmenter", "--data", json.dumps({"root": "x"}), "--out", str(out)], "--data",
                 "expected a JSON list", out)


@case("results --plan not JSON")
def _(ws: Workspace) -> Fault:
    out = ws.out("run")
    return Fault(["results", "--dataset-root", str(ws.root), "--split", SPLIT, "--labels", str(ws.store("warp")),
                  "--plan", "{plan", "--out", str(out)], "--plan", "not valid JSON", out)


@case("train-segmenter --validation not JSON")
def _(ws: Workspace) -> Fault:
    out = ws.out("model")
    data = json.dumps([{"root": str(ws.root), "layout": "davis2017", "split": SPLIT}])
    return Fault(["train-segmenter", "--data", data, "--validation", "[{root", "--out", str(out)], "--validation",
                 "not valid JSON", out)


@case("proposals-report of a missing segment store")
def _(ws: Workspace) -> Fault:
    segment = ws.tmp / "stores" / "segment.zarr"
    out = ws.out("proposals.json")
    return Fault(["proposals-report", "--segment", str(segment), "--out", str(out)], str(segment),
                 "store is missing", out)


# ------------------------------------------------------------------------------------------------ config


def snakemake_of(ws: Workspace, layer: dict, key: str, problem: str) -> Fault:
    """A Snakemake dry run with `layer` as an extra --configfile (on config/config.yaml, as a user runs it); the
    message must name the config key."""
    workdir = ws.tmp / "work"
    (workdir / "config").mkdir(parents=True)
    shutil.copy(REPO / "config" / "config.yaml", workdir / "config" / "config.yaml")
    (workdir / "override.yaml").write_text(yaml.safe_dump(layer))
    argv = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "-n",
            "--cores", "1", "--configfile", str(workdir / "override.yaml")]
    return Fault(argv, f"key '{key}'", problem, workdir / "results", snakemake=True, cwd=workdir)


@case("config file: unknown key")
def _(ws: Workspace) -> Fault:
    return snakemake_of(ws, {"stages": {"warp": {"fb_alfa": 0.1}}}, "stages.warp", "'fb_alfa' was unexpected")


@case("config file: wrong type")
def _(ws: Workspace) -> Fault:
    return snakemake_of(ws, {"stages": {"graph": {"alpha": "high"}}}, "stages.graph.alpha",
                        "'high' is not of type 'number'")


@case("weights list --configfile: not YAML")
def _(ws: Workspace) -> Fault:
    config = ws.tmp / "bad.yaml"
    config.write_text("stages:\n  flow: {backend: dis\n")
    return Fault(["weights", "list", "--configfile", str(config)], str(config), "config file is not valid YAML",
                 ws.out("none"), extra=("line 3",))


@case("weights list --configfile: a list, not a mapping")
def _(ws: Workspace) -> Fault:
    config = ws.tmp / "list.yaml"
    config.write_text("- stages\n- flow\n")
    return Fault(["weights", "list", "--configfile", str(config)], str(config), "must map keys to values",
                 ws.out("none"))


@case("weights list --configfile: wrong type")
def _(ws: Workspace) -> Fault:
    config = ws.tmp / "bad.yaml"
    config.write_text(yaml.safe_dump({"stages": {"flow": {"backend": "flownet2"}}}))
    return Fault(["weights", "list", "--configfile", str(config)], "key 'stages.flow.backend'", "'flownet2'",
                 ws.out("none"), extra=(str(config),))


# ------------------------------------------------------------------------------------------------ the run


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    from stg.datasets.synthetic import generate

    folder = tmp_path_factory.mktemp("corpus")
    root = folder / "data"
    videos = generate(root, seed=11, num_videos=2, frames=(FRAMES, FRAMES), height=HEIGHT, width=WIDTH, split=SPLIT)
    stores = {"flow": folder / "flow.zarr", "warp": folder / "warp.zarr", "other_flow": folder / "other.zarr"}
    for video, flow in ((videos[0], stores["flow"]), (videos[1], stores["other_flow"])):
        common = ["--dataset-root", str(root), "--split", SPLIT, "--video", video]
        assert main(["flow", *common, "--out", str(flow)]) == 0
    common = ["--dataset-root", str(root), "--split", SPLIT, "--video", videos[0]]
    assert main(["warp", *common, "--flow", str(stores["flow"]), "--out", str(stores["warp"])]) == 0
    return Base(root, videos, **stores)


def run_fault(fault: Fault, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """(exit code, stderr) of the command; an exception escaping main() is the traceback the CLI would print."""
    if fault.snakemake:
        result = subprocess.run(fault.argv, capture_output=True, text=True, cwd=fault.cwd)
        return result.returncode, result.stdout + result.stderr
    capsys.readouterr()
    try:
        code = main(fault.argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        pytest.fail(f"stg {' '.join(fault.argv[:1])} raised instead of a one-line error:\n{traceback.format_exc()}")
    return code, capsys.readouterr().err


def message_line(fault: Fault, err: str) -> str:
    """The error line: `stg <command>: error: ...` of the CLI, the config's line of Snakemake's report."""
    if fault.snakemake:
        lines = [line for line in err.splitlines() if "config" in line and "key '" in line]
    else:
        lines = [line for line in err.splitlines() if line.startswith(f"stg {fault.argv[0]}: error: ")]
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    if not fault.snakemake:  # in-process, log records go to pytest's handlers: stderr is the message alone
        others = [line for line in err.splitlines() if line.strip() and line not in lines and not PROGRESS.match(line)]
        assert others == [], f"the message is not one line:\n{err}"
    return lines[0]


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry below folder, with the content of its files."""
    if not folder.exists():
        return {}
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
            for path in folder.rglob("*")}


def temporary_siblings(out: Path) -> list[str]:
    if not out.parent.is_dir():
        return []
    return [p.name for p in out.parent.iterdir() if p.name.startswith((f".{out.name}.tmp-", f".{out.name}.old-"))]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", list(CASES))
def test_fault(name: str, base: Base, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = Workspace(tmp_path, base)
    fault = CASES[name](workspace)
    watched = fault.cwd if fault.snakemake else workspace.out_dir
    before = tree(watched)
    code, err = run_fault(fault, capsys)
    assert code != 0, f"exit code 0:\n{err}"
    assert "Traceback" not in err, err
    line = message_line(fault, err)
    assert fault.where in line, f"the message does not name {fault.where!r}: {line}"
    for phrase in (fault.problem, *fault.extra):
        assert phrase in line, f"the message does not say {phrase!r}: {line}"
    assert fault.out.exists() == fault.existing, f"{fault.out} was left behind" if not fault.existing else \
        f"{fault.out} was removed"
    assert temporary_siblings(fault.out) == []
    after = tree(watched)
    assert sorted(after) == sorted(before), f"left in {watched}: {sorted(set(after) - set(before))}"
    assert after == before, f"files changed in {watched}"


@pytest.mark.parametrize("name", ["truncated JPEG", "store of another video", "--settings not JSON"])
def test_subprocess_cli_gives_the_same_answer(name: str, base: Base, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The real `stg` executable: same exit code and error line as main() in-process, and no traceback."""
    workspace = Workspace(tmp_path, base)
    fault = CASES[name](workspace)
    code, err = run_fault(fault, capsys)
    stg = Path(sys.executable).parent / "stg"
    command = [str(stg)] if stg.is_file() else [sys.executable, "-m", "stg.cli"]
    result = subprocess.run([*command, *fault.argv], capture_output=True, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == code == 2
    assert "Traceback" not in result.stderr
    assert message_line(fault, result.stderr) == message_line(fault, err)
    assert not fault.out.exists() and temporary_siblings(fault.out) == []

