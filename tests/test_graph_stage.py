"""The graph stage on synthetic videos, with proposal stores built from the ground truth plus perturbations."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from stg.cli import main
from stg.datasets import open_dataset, read_annotation, read_first_mask
from stg.errors import InputError, StoreError
from stg.graph.boxes import mask_box
from stg.graph.settings import GraphSettings
from stg.graph.stage import compute_graph_store
from stg.graph.tracker import Q_NODE
from stg.store import build_store, open_store

# Every test here reads a segment store built from the ground truth: the cached-proposal graph.
CACHED = {"proposals": "cached", "threshold": 0.2}  # the paper's cached chain and thr
MINIMAL = {**CACHED, "spatial": False, "temporal": False}  # no CNN: the fastest configuration


def truth_labels(video) -> np.ndarray:
    shape = read_first_mask(video)[0].shape
    return np.stack([read_annotation(video.annotation_paths[name], video.layout, shape=shape)
                     for name in video.frame_names])


def perturbed_proposals(labels: np.ndarray, num_objects: int, seed: int = 0, missing: dict[int, set[int]] | None = None
                        ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per frame: for every object its true mask, an eroded and a dilated copy (jittered boxes), plus one
    far-away distractor in the corner; `missing[obj]` lists frames where that object gets no proposal."""
    rng = np.random.default_rng(seed)
    height, width = labels.shape[1:]
    kernel = np.ones((5, 5), np.uint8)
    boxes, scores, masks = [], [], []
    for t, frame in enumerate(labels):
        frame_boxes, frame_scores, frame_masks = [], [], []
        for obj in range(1, num_objects + 1):
            truth = (frame == obj).astype(np.uint8)
            if not truth.any() or t in (missing or {}).get(obj, set()):
                continue
            for variant in (truth, cv2.erode(truth, kernel), cv2.dilate(truth, kernel)):
                if not variant.any():
                    continue
                box = mask_box(variant.astype(bool)) + rng.uniform(-1, 1, 4).astype(np.float32)
                frame_boxes.append(np.clip(box, 0, [width, height, width, height]))
                frame_scores.append(rng.uniform(0.5, 1.0))
                frame_masks.append(variant * 255)
        corner = np.zeros((height, width), np.uint8)
        corner[:4, :4] = 255
        frame_boxes.append(np.array([0, 0, 4, 4], np.float32))
        frame_scores.append(0.99)
        frame_masks.append(corner)
        boxes.append(np.array(frame_boxes, np.float32).reshape(-1, 4))
        scores.append(np.array(frame_scores, np.float32))
        masks.append(np.array(frame_masks, np.uint8).reshape(-1, height, width))
    return boxes, scores, masks


def write_segment_store(path: Path, video, labels: np.ndarray, num_objects: int, **kwargs) -> Path:
    boxes, scores, masks = perturbed_proposals(labels, num_objects, **kwargs)
    attrs = {"frame_names": video.frame_names, "image_size": list(labels.shape[1:]), "video": video.name,
             "key": "test-segment"}
    with build_store(path, "segment", attrs) as store:
        store.ragged("boxes", boxes, np.float32)
        store.ragged("scores", scores, np.float32)
        store.ragged("masks", masks, np.uint8, chunk_rows=1)
    return path


def mean_j(labels: np.ndarray, truth: np.ndarray, num_objects: int) -> float:
    values = []
    for t in range(1, len(truth)):
        for obj in range(1, num_objects + 1):
            union = np.logical_or(truth[t] == obj, labels[t] == obj).sum()
            values.append(1.0 if union == 0 else np.logical_and(truth[t] == obj, labels[t] == obj).sum() / union)
    return float(np.mean(values))


@pytest.fixture(scope="module")
def upstream(tiny_dataset, tmp_path_factory):
    """Flow and warp stores of the first tiny video, and a segment store from its ground truth."""
    out = tmp_path_factory.mktemp("graph")
    dataset = open_dataset(tiny_dataset, "davis2017", "val")
    video = dataset.video(dataset.video_names()[0])
    common = ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", video.name]
    assert main(["flow", *common, "--out", str(out / "flow.zarr")]) == 0
    assert main(["warp", *common, "--flow", str(out / "flow.zarr"), "--out", str(out / "warp.zarr")]) == 0
    labels = truth_labels(video)
    num_objects = read_first_mask(video)[1]
    write_segment_store(out / "segment.zarr", video, labels, num_objects)
    return video, out, labels, num_objects, common


def run_graph(upstream, settings, name, features=None, segment="segment.zarr"):
    """The cached-proposal graph (the segment store `segment`) with these graph settings."""
    video, out, *_ = upstream
    settings = {**CACHED, **settings}
    summary = compute_graph_store(video, open_store(out / segment, "segment"), open_store(out / "warp.zarr", "warp"),
                                  open_store(out / "flow.zarr", "flow"), features, settings, out / name, key="k")
    return open_store(out / name, "labels"), summary


@pytest.fixture(scope="module")
def features():
    from stg.features.backends import make_features_backend

    return make_features_backend({"backend": "mobilenet_v2", "mobilenet_v2": {"node_size": 64}}, "cpu")


def test_greedy_selection_follows_good_proposals(upstream):
    video, out, labels, num_objects, _ = upstream
    store, summary = run_graph(upstream, MINIMAL, "minimal.zarr")
    result = store["labels"][:]
    assert result.shape == labels.shape and result.dtype == np.uint8
    np.testing.assert_array_equal(result[0], labels[0])
    assert mean_j(result, labels, num_objects) > 0.9
    assert store.attrs["frame_names"] == video.frame_names
    assert store.attrs["num_objects"] == num_objects
    assert store.attrs["no_proposal_frames"] == [0] * num_objects == summary["no_proposal_frames"]
    chosen = store["chosen"][:]
    assert (chosen[1:] >= 0).all()          # a real proposal every time, never the distractor
    offsets = open_store(out / "segment.zarr", "segment")["offsets"][:]
    for t in range(1, len(labels)):
        assert (chosen[t] != offsets[t + 1] - offsets[t] - 1).all()


def test_full_graph_with_cnn_features(upstream, features):
    _, _, labels, num_objects, _ = upstream
    store, _ = run_graph(upstream, {"temporal_size": [128, 128]}, "full.zarr", features=features)
    result = store["labels"][:]
    # below the greedy run's: the spatial graph's thr 0.2 grows the mask towards the dilated proposal
    assert mean_j(result, labels, num_objects) > 0.7
    assert store.attrs["backend"]["backend"] == "mobilenet_v2"
    assert store.attrs["graph"]["spatial_iterations"] == 2
    nodes = store["nodes"][:]
    assert (nodes[1:] >= 2).any()            # real graphs were built
    soft = store["soft"][:]
    assert soft.shape == (len(labels), num_objects, *labels.shape[1:])
    assert np.isfinite(store["predicted_boxes"][1:]).all()


def test_object_without_proposals_continues_from_its_warped_mask(upstream, tmp_path):
    video, out, labels, num_objects, _ = upstream
    gap = {3, 4}
    write_segment_store(out / "gappy.zarr", video, labels, num_objects, missing={1: gap})
    store, summary = run_graph(upstream, MINIMAL, "gappy-graph.zarr", segment="gappy.zarr")
    assert summary["no_proposal_frames"][0] == len(gap)
    assert store.attrs["no_proposal_frames"][0] == len(gap)
    chosen, flags = store["chosen"][:], store["no_proposal"][:]
    for t in gap:
        assert chosen[t, 0] == Q_NODE and flags[t, 0] == 1
        overlap = np.logical_and(store["labels"][t] == 1, labels[t] == 1).sum()
        assert overlap / max((labels[t] == 1).sum(), 1) > 0.7   # Q kept the object
    assert mean_j(store["labels"][:], labels, num_objects) > 0.85


def test_identical_inputs_give_identical_labels(upstream, features):
    settings = {"temporal_size": [64, 64], "memory": "first_and_window", "memory_window": 3}
    first, _ = run_graph(upstream, settings, "again-1.zarr", features=features)
    second, _ = run_graph(upstream, settings, "again-2.zarr", features=features)
    assert first["labels"][:].tobytes() == second["labels"][:].tobytes()
    assert first["soft"][:].tobytes() == second["soft"][:].tobytes()


@pytest.mark.parametrize("settings, least", [
    ({"motion": False, "spatial": False, "temporal": False}, 0.95),
    ({"spatial": True, "spatial_iterations": 0, "temporal": False}, 0.95),
    ({"spatial": True, "temporal": False, "spatial_iterations": 1}, 0.8),
    ({"spatial": False, "temporal": True, "temporal_size": [32, 48], "memory": "first_and_window"}, 0.4),
    ({"spatial": False, "temporal_size": [64, 64], "memory_values": "final", "temporal_temperature": 0.5}, 0.4),
])
def test_every_variant_runs(upstream, features, settings, least):
    _, _, labels, num_objects, _ = upstream
    store, _ = run_graph(upstream, settings, "variant.zarr", features=features)
    assert mean_j(store["labels"][:], labels, num_objects) > least


def test_cli_graph(upstream):
    _, out, labels, num_objects, common = upstream
    args = ["graph", *common, "--segment", str(out / "segment.zarr"), "--warp", str(out / "warp.zarr"),
            "--flow", str(out / "flow.zarr"), "--device", "cpu", "--key", "abc", "--out", str(out / "cli.zarr"),
            "--settings", '{"proposals": "cached", "threshold": 0.2, "spatial": false, "temporal": false}']
    assert main(args) == 0
    store = open_store(out / "cli.zarr", "labels")
    assert store.attrs["key"] == "abc"
    assert store.attrs["backend"] is None      # no CNN was loaded
    assert store.attrs["graph"]["proposals"] == "cached" and store.attrs["segmenter"] is None
    assert store.attrs["upstream"]["segment"] == open_store(out / "segment.zarr", "segment").attrs["key"]
    bad = [*args[:-1], '{"proposals": "cached", "spatial": false, "temporal": false, "lambda3": 1}']
    assert main(bad) == 2


def test_mismatched_stores_are_refused(upstream, tiny_dataset):
    _, out, *_ = upstream
    dataset = open_dataset(tiny_dataset, "davis2017", "val")
    other = dataset.video(dataset.video_names()[1])
    with pytest.raises(StoreError, match="not 'synth01"):
        compute_graph_store(other, open_store(out / "segment.zarr", "segment"), open_store(out / "warp.zarr", "warp"),
                            open_store(out / "flow.zarr", "flow"), None, MINIMAL, out / "nope.zarr")


def test_settings_validation():
    assert GraphSettings.from_dict({}).spatial_iterations == 2
    with pytest.raises(InputError, match="lambda3"):
        GraphSettings.from_dict({"lambda3": 0.1})
    with pytest.raises(InputError, match="memory"):
        GraphSettings.from_dict({"memory": "some"})
    assert GraphSettings.from_dict({"temporal_size": [32, 40], "passes": 2, "device": "cpu"}).temporal_size == (32, 40)


@pytest.mark.parametrize("q_source", ["final", "selected"])
def test_q_warps_the_final_or_the_selected_masks(upstream, features, monkeypatch, q_source):
    """Q_t (what the tracker is given at t) is the warp of frame t-1's final label map, or with `q_source: selected` of
    the masks Eq. 6 selected there, before the temporal graph changed them."""
    from stg.flow.store import read_flow
    from stg.graph.tracker import GraphTracker
    from stg.warp.ops import one_hot
    from stg.warp.stage import warp_step

    video, out, labels, num_objects, _ = upstream
    seen = []
    step = GraphTracker.step

    def recording_step(self, frame, image, proposals, warped, seed=None):
        result = step(self, frame, image, proposals, warped, seed)
        seen.append((warped.copy(), result))
        return result

    monkeypatch.setattr(GraphTracker, "step", recording_step)
    settings = {"temporal_size": [64, 64], "threshold": 0.9, "q_source": q_source}
    store, _ = run_graph(upstream, settings, f"q-{q_source}.zarr", features=features)
    flow, warp = open_store(out / "flow.zarr", "flow"), open_store(out / "warp.zarr", "warp")
    if q_source == "selected":  # the temporal graph changed masks, so the two maps differ
        assert any((result.q_labels != result.labels).any() for _, result in seen)
    else:
        assert all(result.q_labels is result.labels for _, result in seen)
    for t in range(2, len(labels)):
        previous = seen[t - 2][1]
        source = previous.labels if q_source == "final" else previous.q_labels
        expected, _ = warp_step(one_hot(source, num_objects), read_flow(flow, "backward", t - 1),
                                read_flow(flow, "forward", t - 1), dict(warp.attrs["settings"]))
        np.testing.assert_array_equal(seen[t - 1][0], expected)
    np.testing.assert_array_equal(store["labels"][1:], np.stack([result.labels for _, result in seen]))
