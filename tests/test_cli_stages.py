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
    assert flow["backward"].dtype == np.int16  # fixed point: read it with stg.flow.store.read_flow
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


def _stage_args(name: str, root, tmp_path) -> list[str]:
    """A stage's required arguments (from the stage table), pointing at stores that do not exist."""
    from stg.stages import STAGES

    stage = STAGES[name]
    args = ["--dataset-root", str(root), "--split", "val", "--video", "no-video"] if stage.reads_video else []
    for role in stage.store_roles:
        args += [f"--{role}", str(tmp_path / f"{role}.zarr")]
    return [name, *args, "--out", str(tmp_path / "out.zarr")]


@pytest.mark.parametrize(("stage", "settings", "key", "problem"), [
    ("flow", {"dis": {"presett": "fast"}}, "stages.flow.dis", "'presett' was unexpected"),
    ("flow", {"backend": "raft", "raft": {"num_flow_updates": 0}}, "stages.flow.raft.num_flow_updates", "minimum"),
    ("warp", {"fb_alpha": "high"}, "stages.warp.fb_alpha", "'high' is not of type 'number'"),
    ("warp", {"source": "last_pass"}, "stages.warp.source", "last_pass"),
    ("propagate", {"threshold": "half"}, "stages.propagate.threshold", "'half' is not of type 'number'"),
    ("detect", {"motion": {"min_area": 0}}, "stages.detect.motion.min_area", "minimum"),
    ("segment", {"q_mode": "per_box"}, "stages.segment.q_mode", "per_box"),
    ("graph", {"alpha": "high"}, "stages.graph.alpha", "'high' is not of type 'number'"),
    ("graph", {"memory_values": "all"}, "stages.graph.memory_values", "'all' is not one of"),
])
def test_bad_settings_of_every_stage_fail_with_the_key_named(tiny_dataset, tmp_path, capsys, stage, settings, key,
                                                             problem):
    code = main([*_stage_args(stage, tiny_dataset, tmp_path), "--settings", json.dumps(settings)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--settings: key '{key}'" in err and problem in err
    assert "Traceback" not in err and "no-video" not in err  # settings fail before any input is read
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.parametrize("stage", ["flow", "warp", "propagate", "detect", "segment", "graph"])
def test_unknown_setting_of_every_stage_is_named(tiny_dataset, tmp_path, capsys, stage):
    code = main([*_stage_args(stage, tiny_dataset, tmp_path), "--settings", json.dumps({"bogus": 1})])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--settings: key 'stages.{stage}'" in err and "'bogus' was unexpected" in err
    assert "Traceback" not in err


def test_omitted_settings_take_the_schema_defaults(chain, tmp_path):
    """The chain's warp store (no --settings) equals one made with every default stated, and records what was given."""
    from stg.settings import defaults

    root, video, out = chain
    explicit = tmp_path / "warp.zarr"
    assert main(["warp", "--dataset-root", str(root), "--split", "val", "--video", video, "--flow",
                 str(out / "flow.zarr"), "--settings", json.dumps(defaults("warp")), "--out", str(explicit)]) == 0
    made = open_store(out / "warp.zarr", "warp")
    np.testing.assert_array_equal(open_store(explicit, "warp")["priors"][:], made["priors"][:])
    assert made.attrs["settings"] == {}
