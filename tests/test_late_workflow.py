"""End to end: Snakemake runs a tiny synthetic YouTube-VOS valid split (an object entering late, no ground truth to
score) through the flow-propagation chain and the greedy graph chain."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from workflow_helpers import make_workdir, snakemake

pytestmark = pytest.mark.slow

LATE_VIDEO = "synth03-triple"


@pytest.fixture(scope="module")
def ytvos_runs(tmp_path_factory):
    from stg.datasets.synthetic_layouts import write_youtube_vos

    workdir = tmp_path_factory.mktemp("late_workflow")
    root = workdir / "data" / "ytvos"
    write_youtube_vos(root, split="valid", num_frames=8)
    make_workdir(workdir, {"datasets": {"ytvos": {"layout": "youtube_vos", "root": str(root), "splits": ["valid"]}}})
    result = snakemake(workdir, "results/ytvos_valid__propagate", "results/ytvos_valid__baseline")
    return workdir, root, result


@pytest.mark.parametrize("variant", ["propagate", "baseline"])
def test_youtube_vos_valid_run(ytvos_runs, variant):
    from stg.datasets import open_dataset, read_seed_mask
    from stg.palette import read_png_labels

    workdir, root, _ = ytvos_runs
    run = workdir / "results" / f"ytvos_valid__{variant}"
    dataset = open_dataset(root, "youtube_vos", "valid")
    info = json.loads((run / "run.json").read_text())
    assert info["scored"] is False and info["layout"] == "youtube_vos"
    assert "Nothing to score" in (run / "report.html").read_text()
    with zipfile.ZipFile(run / "submission.zip") as archive:
        names = set(archive.namelist())
    assert names == {f"Annotations/{v.name}/{f}.png" for v in dataset.videos() for f in v.frame_names}
    video = dataset.video(LATE_VIDEO)
    late = video.object_starts[3]
    labels = [read_png_labels(run / "Annotations" / LATE_VIDEO / f"{name}.png")[0] for name in video.frame_names]
    assert not any((frame == 3).any() for frame in labels[:late]), "nothing of the late object before its start"
    seed = read_seed_mask(video, late)
    assert np.array_equal(labels[late] == 3, seed == 3), "the late object is its seed at its start frame"


def test_folder_of_own_videos_runs_end_to_end(tmp_path):
    """A user's folder (a frame folder and a video file whose third object enters late) through the greedy graph
    chain: masks for every frame, an overlay video per video, nothing scored."""
    import cv2

    from stg.datasets import open_dataset
    from stg.datasets.synthetic_layouts import write_folder
    from stg.palette import read_png_labels

    root = tmp_path / "data" / "mine"
    write_folder(root, video_suffix=".avi", num_frames=8)
    make_workdir(tmp_path, {"datasets": {"mine": {"layout": "folder", "root": str(root), "splits": ["all"]}}})
    snakemake(tmp_path, "results/mine_all__baseline")
    run = tmp_path / "results" / "mine_all__baseline"
    info = json.loads((run / "run.json").read_text())
    assert info["scored"] is False and info["layout"] == "folder"
    dataset = open_dataset(root, "folder", "all")
    for video in dataset.videos():
        names = sorted(p.stem for p in (run / "Annotations" / video.name).glob("*.png"))
        assert names == sorted(video.frame_names)
        capture = cv2.VideoCapture(str(run / "overlays" / f"{video.name}.avi"))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(video.frame_names)
        capture.release()
    clip = dataset.video("clip")
    late = clip.object_starts[3]
    labels = [read_png_labels(run / "Annotations" / "clip" / f"{name}.png")[0] for name in clip.frame_names]
    assert late > 0 and not any((frame == 3).any() for frame in labels[:late]) and (labels[late] == 3).any()
