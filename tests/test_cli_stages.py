"""Each CLI stage by hand on a tiny synthetic video, as a user would run it outside Snakemake."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stg.cli import main
from stg.datasets import open_dataset, read_annotation, read_first_mask
from stg.store import open_store


@pytest.fixture(scope="module")
def chain(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("stages")
    video = open_dataset(tiny_dataset, "davis2017", "val").video_names()[0]
    common = ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", video]
    assert main(["flow", *common, "--out", str(out / "flow.zarr")]) == 0
    assert main(["warp", *common, "--flow", str(out / "flow.zarr"), "--out", str(out / "warp.zarr")]) == 0
    assert main(["propagate", "--warp", str(out / "warp.zarr"), "--out", str(out / "labels.zarr")]) == 0
    return tiny_dataset, video, out


def test_flow_store_layout(chain):
    root, video, out = chain
    flow = open_store(out / "flow.zarr", "flow")
    frames = open_dataset(root, "davis2017", "val").video(video).frame_names
    assert flow["forward"].shape == (len(frames) - 1, 120, 214, 2)
    assert flow["backward"].dtype == np.float16
    assert flow["forward"].chunks == (1, 120, 214, 2)
    assert flow.attrs["frame_names"] == frames
    assert flow.attrs["backend"]["backend"] == "dis"
    assert flow.attrs["image_size"] == [120, 214]


def test_warp_priors_start_from_ground_truth(chain):
    root, video, out = chain
    warp = open_store(out / "warp.zarr", "warp")
    labels, num_objects = read_first_mask(open_dataset(root, "davis2017", "val").video(video))
    priors = warp["priors"]
    assert priors.shape[:2] == (len(warp.attrs["frame_names"]), num_objects)
    for k in range(num_objects):
        np.testing.assert_array_equal(priors[0, k] == 255, labels == k + 1)
    assert warp["occlusion"].shape == (priors.shape[0], 120, 214)


def test_propagated_labels_follow_objects(chain):
    root, video, out = chain
    labels = open_store(out / "labels.zarr", "labels")["labels"]
    seq = open_dataset(root, "davis2017", "val").video(video)
    _, num_objects = read_first_mask(seq)
    truth = read_annotation(seq.annotation_paths[seq.frame_names[1]], "davis2017")
    result = labels[1]
    for k in range(1, num_objects + 1):  # one flow step keeps every object
        union = np.logical_or(truth == k, result == k).sum()
        assert np.logical_and(truth == k, result == k).sum() / union > 0.8


def test_metrics_cli(chain, tmp_path, capsys):
    from stg.palette import write_palette_png

    root, _, _ = chain
    dataset = open_dataset(root, "davis2017", "val")
    results = tmp_path / "res"
    for video in dataset.videos():
        (results / video.name).mkdir(parents=True)
        for name, path in video.annotation_paths.items():
            write_palette_png(results / video.name / f"{name}.png", read_annotation(path, "davis2017"))
    assert main(["metrics", "--davis-root", str(root), "--results", str(results), "--set", "val",
                 "--out", str(tmp_path / "scores")]) == 0
    scores = json.loads((tmp_path / "scores" / "metrics.json").read_text())
    assert scores["global"]["J&F-Mean"] == pytest.approx(1.0)
    assert "J&F-Mean" in capsys.readouterr().out


def test_bad_input_is_a_clear_error_and_leaves_no_store(tiny_dataset, tmp_path, capsys):
    code = main(["flow", "--dataset-root", str(tiny_dataset), "--split", "val", "--video", "no-such-video",
                 "--out", str(tmp_path / "f.zarr")])
    assert code == 2
    assert "no-such-video" in capsys.readouterr().err
    assert not (tmp_path / "f.zarr").exists()


def test_corrupt_frame_fails_before_writing(tiny_dataset, tmp_path, capsys):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset, root)
    video = open_dataset(root, "davis2017", "val").video_names()[0]
    frame = sorted((root / "JPEGImages" / "480p" / video).glob("*.jpg"))[3]
    frame.write_bytes(b"not a jpeg")
    code = main(["flow", "--dataset-root", str(root), "--split", "val", "--video", video,
                 "--out", str(tmp_path / "f.zarr")])
    assert code == 2
    err = capsys.readouterr().err
    assert frame.name in err and "corrupt" in err
    assert not (tmp_path / "f.zarr").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["copy"]


def test_raft_without_weights_fails_at_start(tiny_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    video = open_dataset(tiny_dataset, "davis2017", "val").video_names()[0]
    code = main(["flow", "--dataset-root", str(tiny_dataset), "--split", "val", "--video", video, "--device", "cpu",
                 "--settings", json.dumps({"backend": "raft", "raft": {"model": "raft_small"}}),
                 "--out", str(tmp_path / "f.zarr")])
    assert code == 2
    assert "stages.flow.raft.weights" in capsys.readouterr().err
    assert not (tmp_path / "f.zarr").exists()
