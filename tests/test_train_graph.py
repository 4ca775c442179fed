"""Graph training (Eq. 9): the loss by hand, the differentiable graph against inference's, training on the cached
stores of a tiny synthetic split, the train_graph stage, its plan and its Snakemake rule."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from stg.cli import main
from stg.datasets import open_dataset
from stg.errors import InputError
from stg.graph.boxes import expand_box
from stg.graph.crops import crop
from stg.graph.loss import eq9_loss, soft_iou
from stg.graph.settings import GraphSettings
from stg.graph.spatial import edge_weights, edge_weights_torch, spatial_update, spatial_update_torch
from stg.graph.tracker import GraphTracker, Proposals
from stg.store import build_store
from stg.train.graph import GraphSpec, GraphTask, collate, make_graph_sample
from stg.train.loop import Recipe, train
from stg.train.stage import CURVE_FILE, MODEL_FILE, RECORD_FILE, _load_graph_data, train_graph

SMALL = {"node_size": 64, "temporal_size": [64, 64]}  # crops for tests: a CPU step in a fraction of a second


# ---------------------------------------------------------------- Eq. 9 by hand


def _plane(rows, cols, value=1.0):
    plane = torch.zeros(4, 4)
    plane[rows, cols] = value
    return plane


def test_eq9_by_hand():
    """Two nodes of 4x4 masks; every number below is worked out in the comments."""
    states = torch.stack([_plane(slice(0, 2), slice(0, 2)),          # h1: top-left 2x2 at 1
                          _plane(slice(0, 4), slice(0, 2), 0.5)])    # h2: left half at 0.5
    states.requires_grad_(True)
    truth = _plane(slice(0, 4), slice(0, 2))                         # M: left half, b = [0, 0, 2, 4]
    warped = _plane(slice(0, 2), slice(0, 3))                        # Q: rows 0-1, cols 0-2, p = [0, 0, 3, 2]
    truth_box, predicted = np.array([0, 0, 2, 4], np.float32), np.array([0, 0, 3, 2], np.float32)
    final = torch.tensor([[0.9, 0.2], [0.6, 0.1]])
    final_truth = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # soft IoUs: h1 vs M 4 / 8; h2 vs M 4 / 8; h1 vs Q 4 / 6; h2 vs Q 2 / 8
    np.testing.assert_allclose(soft_iou(states, truth).detach(), [0.5, 0.5])
    np.testing.assert_allclose(soft_iou(states, warped).detach(), [2 / 3, 0.25])
    # thr 0.4: B(h1) = [0, 0, 2, 2], B(h2) = [0, 0, 2, 4]
    # node 1: S(b, M) = 0.4 * 4/8 + 0.6 * 0.5 = 0.5;  S(p, Q) = 0.4 * 4/6 + 0.6 * 2/3 = 2/3
    # node 2: S(b, M) = 0.4 * 1 + 0.6 * 0.5 = 0.7;    S(p, Q) = 0.4 * 4/10 + 0.6 * 0.25 = 0.31
    selection = abs(0.5 - 2 / 3) + abs(0.7 - 0.31)
    bce = -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.9)) / 4
    terms = eq9_loss(states, truth_box, truth, predicted, warped, final, final_truth, gamma=100.0, lambda1=0.4,
                     lambda2=0.6, threshold=0.4)
    assert terms.selection.item() == pytest.approx(selection, abs=1e-6)
    assert terms.bce.item() == pytest.approx(bce, abs=1e-6)
    assert terms.total.item() == pytest.approx(100 * selection + bce, abs=1e-4)  # 55.9028
    terms.total.backward()
    assert states.grad is not None and states.grad.abs().sum() > 0


# ---------------------------------------------------------------- the torch graph is inference's graph


def test_torch_spatial_graph_equals_inference():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(5, 16)).astype(np.float32)
    features[2] = 0.0  # a zero vector: cosine 0 with everything in both
    corners = rng.uniform(0, 40, size=(5, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 30, size=(5, 2))], axis=1).astype(np.float32)
    states = rng.uniform(size=(5, 12, 17)).astype(np.float32)
    weights = edge_weights(features, boxes, 0.7, 0.3)
    from stg.graph.boxes import box_iou_matrix

    vectors = torch.from_numpy(features).requires_grad_(True)
    torch_weights = edge_weights_torch(vectors, torch.from_numpy(box_iou_matrix(boxes, boxes)), 0.7, 0.3)
    np.testing.assert_allclose(torch_weights.detach().numpy(), weights, atol=1e-6)
    for iterations in (0, 1, 2, 3):
        expected = spatial_update(states, weights, iterations)
        got = spatial_update_torch(torch.from_numpy(states), torch_weights, iterations)
        np.testing.assert_allclose(got.detach().numpy(), expected, atol=1e-5)
    got.sum().backward()
    assert vectors.grad is not None and vectors.grad[[0, 1, 3, 4]].abs().sum() > 0


@pytest.fixture(scope="module")
def graph_data(tiny_dataset, tmp_path_factory):
    """The pipeline's stages on the tiny synthetic split (motion boxes, GrabCut masks): its cached proposals."""
    out = tmp_path_factory.mktemp("graph-training")
    segment, warp = {}, {}
    for name in open_dataset(tiny_dataset, "davis2017", "val").video_names():
        common = ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", name]
        paths = {stage: str(out / stage / f"{name}.zarr") for stage in ("flow", "warp", "detect", "segment")}
        assert main(["flow", *common, "--out", paths["flow"]]) == 0
        assert main(["warp", *common, "--flow", paths["flow"], "--out", paths["warp"]]) == 0
        assert main(["detect", *common, "--warp", paths["warp"], "--settings", '{"backend": "motion"}',
                     "--out", paths["detect"]]) == 0
        assert main(["segment", *common, "--detect", paths["detect"], "--warp", paths["warp"],
                     "--settings", '{"backend": "grabcut"}', "--out", paths["segment"]]) == 0
        segment[name], warp[name] = paths["segment"], paths["warp"]
    return [{"root": str(tiny_dataset), "layout": "davis2017", "split": "val", "segment": segment, "warp": warp}]


@pytest.fixture(scope="module")
def videos(graph_data):
    return [video for group in _load_graph_data(graph_data) for video in group]


def test_torch_graph_equals_the_tracker(videos):
    """Node vectors, spatial states and the temporal refinement of the training forward equal GraphTracker's."""
    from stg.features.mobilenet import MobileNetV2Features

    spec = GraphSpec(node_size=64, temporal_size=(64, 64), memory_frames=2)
    settings = GraphSettings.from_dict({"temporal_size": [64, 64], "threshold": spec.threshold, "proposals": "cached"})
    task = GraphTask(videos, spec)
    network = task.build_network().eval()
    backend = MobileNetV2Features(node_size=64, weights="imagenet", device="cpu")  # the task starts from ImageNet
    # a sample with several proposals and two memory frames
    v, t, k, rows, p = next(item for item in task.index if len(item[3]) >= 3 and item[1] >= 2)
    video = videos[v]
    sample, node_crops, memory_crops = make_graph_sample(video, t, k, rows, p, spec, None)
    batch = collate([(sample, node_crops, memory_crops)])
    height, width = video.shape
    image = video.image(t)
    chosen_rows = rows[np.argsort(-video.scores[rows], kind="stable")[:spec.max_proposals]]
    crops = [crop(image, expand_box(b, 0.0, height, width)) for b in video.boxes[np.sort(chosen_rows)]]
    with torch.inference_mode():
        vectors = network.node_vectors(batch.node_crops)
        np.testing.assert_allclose(vectors.numpy(), backend.node_features(crops), atol=1e-5)
        states = network.spatial(vectors, sample).numpy()
    tracker = GraphTracker(settings, backend, video.num_objects)
    proposals = Proposals(video.boxes[np.sort(chosen_rows)], sample.scores, sample.masks.numpy())
    expected, _, _ = tracker._spatial(np.arange(len(proposals)), proposals, dict(enumerate(vectors.numpy())),
                                      sample.warped.numpy())
    np.testing.assert_allclose(states, expected, atol=1e-5)

    # temporal: binary proposals and l = 0, so the selected state is the mask inference refines
    network.spec = replace(spec, spatial_iterations=0)
    sample.masks = (sample.masks > spec.threshold).float()
    with torch.inference_mode():
        out = network(collate([(sample, node_crops, memory_crops)])).samples[0]
    seen = [r for r in range(t) if video.pixels[r, k - 1] > 0]
    for r in (seen[0], seen[-1]):  # make_graph_sample(rng=None): the object's first frame and the latest ones
        mask = video.labels(r) == k
        tracker._remember_mask(r, k - 1, mask, tracker._key_window(video.image(r), mask))
    state, _, (_, window) = tracker._temporal(image, k - 1, sample.masks[out.pick].numpy() > 0.5)
    assert window == out.window
    left, top, right, bottom = window
    # crops.paste resizes with cv2, the training forward with torch: equal to float rounding of the resize
    np.testing.assert_allclose(out.final.numpy(), state[top:bottom, left:right], atol=1e-4)


# ---------------------------------------------------------------- training


def small_recipe(**changes) -> Recipe:
    return Recipe(**{"steps": 12, "batch_size": 4, "lr": 1e-4, "weight_decay": 0.0, "warmup_steps": 0,
                     "eval_every": 12, "seed": 0, **changes})


def test_a_few_steps_lower_the_loss(videos, tmp_path):
    """The default learning rate (1e-4) on the tiny split: the held-out Eq. 9 loss and its BCE fall."""
    torch.set_num_threads(1)
    from stg.models import training_settings

    assert training_settings({}, "graph")["lr"] == small_recipe().lr
    task = GraphTask(videos, GraphSpec(node_size=64, temporal_size=(64, 64)), validation=videos)
    torch.manual_seed(0)
    with torch.inference_mode():
        before = task.evaluate(task.build_network().eval(), torch.device("cpu"))
    result = train(task, small_recipe(), tmp_path / "work", progress=False)
    after = result.history[-1]
    assert after["val_loss"] < before["val_loss"], (before, after)
    assert after["val_bce"] < 0.9 * before["val_bce"], (before, after)


def test_resume_after_interruption_equals_an_uninterrupted_run(videos, tmp_path):
    torch.set_num_threads(1)
    spec = GraphSpec(node_size=64, temporal_size=(64, 64))
    recipe = small_recipe(steps=4, batch_size=2, checkpoint_every=2, eval_every=0, seed=3)
    whole = train(GraphTask(videos, spec), recipe, tmp_path / "whole", progress=False)
    first = train(GraphTask(videos, spec), recipe, tmp_path / "parts", stop_after=2, progress=False)
    assert first.steps == 2
    resumed = train(GraphTask(videos, spec), recipe, tmp_path / "parts", progress=False)
    assert resumed.resumed_from == 2
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_stage_writes_a_model_the_graph_features_load(graph_data, tmp_path):
    from stg.features.mobilenet import MobileNetV2Features

    settings = {**SMALL, "steps": 2, "batch_size": 2, "warmup_steps": 0, "eval_every": 1}
    train_graph(settings, graph_data, tmp_path / "model", tmp_path / "work", key="k", validation=graph_data,
                device="cpu")
    folder = tmp_path / "model"
    assert {p.name for p in folder.iterdir()} == {MODEL_FILE, RECORD_FILE, CURVE_FILE}
    state = torch.load(folder / MODEL_FILE, weights_only=True)
    assert all(name.startswith("features.") for name in state)
    record = json.loads((folder / RECORD_FILE).read_text())
    assert record["model"] == "graph" and record["steps"] == 2 and len(record["history"]) == 2
    assert record["settings"]["gamma"] == 100.0 and record["settings"]["node_size"] == 64
    assert set(record["data"][0]["videos"]) == set(graph_data[0]["segment"]) and record["training_samples"] > 0
    assert {"wall_seconds", "cpu_seconds", "device", "packages", "init", "seconds_per_step"} <= set(record)
    assert "val_j" in record["history"][-1]
    assert not (tmp_path / "work").exists()
    backend = MobileNetV2Features(node_size=64, weights=str(folder / MODEL_FILE), device="cpu")
    assert backend.identity()["weights"]["file"] == MODEL_FILE
    trained = state["features.18.0.weight"].float()
    assert torch.equal(backend.features[18][0].weight.detach(), trained)


# ---------------------------------------------------------------- bad inputs


def test_missing_segment_store_is_a_clear_error(graph_data, tmp_path):
    data = json.loads(json.dumps(graph_data))
    name = sorted(data[0]["segment"])[0]
    data[0]["segment"][name] = str(tmp_path / "nowhere.zarr")
    with pytest.raises(InputError, match=f"segment store of training video '{name}' is missing"):
        _load_graph_data(data)
    code = main(["train-graph", "--data", json.dumps(data), "--out", str(tmp_path / "m")])
    assert code == 2 and not (tmp_path / "m").exists()
    assert main(["train-graph", "--data", "[]", "--out", str(tmp_path / "m")]) == 2


def test_split_without_proposals_is_a_clear_error(graph_data, tmp_path):
    """Segment stores whose frames hold no proposal: no sample, and the error says why."""
    from stg.store import open_store

    data = json.loads(json.dumps(graph_data))
    for name, path in graph_data[0]["segment"].items():
        source = open_store(Path(path), "segment")
        count = len(source.attrs["frame_names"])
        height, width = source.attrs["image_size"]
        empty = tmp_path / f"{name}.zarr"
        with build_store(empty, "segment", dict(source.attrs)) as store:
            store.ragged("boxes", [np.zeros((0, 4), np.float32)] * count, np.float32)
            store.ragged("scores", [np.zeros(0, np.float32)] * count, np.float32)
            store.ragged("masks", [np.zeros((0, height, width), np.uint8)] * count, np.uint8, chunk_rows=1)
        data[0]["segment"][name] = str(empty)
    videos = [video for group in _load_graph_data(data) for video in group]
    with pytest.raises(InputError, match="hold no proposal"):
        GraphTask(videos, GraphSpec(node_size=64, temporal_size=(64, 64)))


# ---------------------------------------------------------------- plan and workflow

TRAINED_GRAPH = {"device": "cpu", "temporal_size": [64, 64], "mobilenet_v2": {"weights": "trained", "node_size": 64}}
TRAINING = {"data": [{"dataset": "demo", "split": "val"}], "variant": "weightfree", "device": "cpu", **SMALL,
            "steps": 2, "batch_size": 2, "warmup_steps": 0, "eval_every": 1, "max_proposals": 3}
# weightfree names its features (imagenet); a variant's stages win over `stages:`, so the trained ones go there too
OVERRIDE = {"training": {"graph": TRAINING}, "stages": {"graph": TRAINED_GRAPH}, "default_variant": "weightfree",
            "variants": {"weightfree": {"stages": {"graph": {"mobilenet_v2": {"weights": "trained"}}}}}}


def test_plan_reads_the_trained_graph_by_key():
    from workflow_helpers import merged_config

    from stg.config import plan_run

    config = merged_config(OVERRIDE)
    plan = plan_run(config, "demo", "val", "weightfree")
    model = plan.models["graph"]
    assert plan.settings["graph"]["mobilenet_v2"]["weights"] == model.model_file
    assert plan.model_inputs("graph") == {"graph_model": model.folder} and plan.model_inputs("segment") == {}
    assert model.data[0]["segment_key"] == plan.keys["segment"], "the training split's proposals are the run's"
    changed = plan_run(merged_config(OVERRIDE, {"training": {"graph": {"gamma": 10.0}}}), "demo", "val", "weightfree")
    assert changed.models["graph"].key != model.key and changed.keys["graph"] != plan.keys["graph"]
    assert all(changed.keys[s] == plan.keys[s] for s in ("flow", "warp", "detect", "segment"))
    device = plan_run(merged_config(OVERRIDE, {"training": {"graph": {"device": "auto"}}}), "demo", "val",
                      "weightfree")
    assert device.keys == plan.keys
    assert "graph" not in plan_run(config, "demo", "val", "baseline").models, "a graph without CNN trains nothing"
    with pytest.raises(InputError, match="training.graph.data"):
        plan_run(merged_config(OVERRIDE, {"training": {"graph": {"data": []}}}), "demo", "val", "weightfree")
    with pytest.raises(InputError, match="training.graph.variant"):
        plan_run(merged_config(OVERRIDE, {"training": {"graph": {"variant": "nope"}}}), "demo", "val", "weightfree")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from workflow_helpers import make_workdir, snakemake

    workdir = tmp_path_factory.mktemp("train-graph-workflow")
    make_workdir(workdir, OVERRIDE)
    snakemake(workdir, "results/demo_val__weightfree")
    return workdir


@pytest.mark.slow
def test_train_graph_rule_trains_on_the_cached_stores(trained_run):
    models = [p for p in (trained_run / "cache" / "models" / "graph").iterdir() if not p.name.startswith(".")]
    assert len(models) == 1
    record = json.loads((models[0] / RECORD_FILE).read_text())
    assert record["steps"] == 2 and len(record["data"][0]["videos"]) == 2
    run = json.loads((trained_run / "results" / "demo_val__weightfree" / "run.json").read_text())
    assert models[0].name in run["settings"]["graph"]["mobilenet_v2"]["weights"]


@pytest.mark.slow
def test_training_change_reruns_training_graph_and_metrics_only(trained_run):
    from workflow_helpers import planned_jobs, snakemake

    changed = trained_run / "gamma.yaml"
    changed.write_text(yaml.safe_dump({"training": {"graph": {"gamma": 10.0}}}))
    result = snakemake(trained_run, "-n", "results/demo_val__weightfree", extra_config=changed)
    assert planned_jobs(result) == {"train_graph": 1, "graph": 2, "metrics": 1}
    device = trained_run / "device.yaml"
    device.write_text(yaml.safe_dump({"training": {"graph": {"device": "auto"}}}))
    assert planned_jobs(snakemake(trained_run, "-n", "results/demo_val__weightfree", extra_config=device)) == {}


@pytest.mark.slow
def test_a_separate_training_split_gets_its_own_stores(tmp_path):
    """Training on another dataset's split: the workflow plans that split's stores up to segment, then train_graph."""
    from workflow_helpers import make_workdir, planned_jobs, snakemake

    other = {"layout": "synthetic", "splits": ["train"],
             "synthetic": {"seed": 5, "num_videos": 3, "min_frames": 12, "max_frames": 14, "height": 240, "width": 428}}
    make_workdir(tmp_path, {**OVERRIDE, "datasets": {"demotrain": other},
                            "training": {"graph": {**TRAINING, "data": [{"dataset": "demotrain", "split": "train"}]}}})
    result = snakemake(tmp_path, "-n", "results/demo_val__weightfree")
    assert planned_jobs(result) == {"synth": 2, "flow": 5, "warp": 5, "detect": 5, "segment": 5, "train_graph": 1,
                                    "graph": 2, "metrics": 1}
