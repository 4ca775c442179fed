"""End to end: the train_segmenter rule trains on the reduced demo; segment/graph read its model by key, and a
training change reruns exactly the training and what reads the model (never flow, warp or detect)."""

from __future__ import annotations

import json

import pytest
import yaml
from workflow_helpers import make_workdir, planned_jobs, snakemake

pytestmark = pytest.mark.slow

TRAINED_SEGMENTER = {"backend": "deeplab", "device": "cpu", "deeplab": {"weights": "trained", "batch_size": 8}}
ONLINE_LEARNING = {"steps": 2, "batch_size": 2, "frames": 2}
OL_SEGMENTER = {**TRAINED_SEGMENTER, "deeplab": {**TRAINED_SEGMENTER["deeplab"], "online_learning": ONLINE_LEARNING}}
OVERRIDE = {
    "training": {"segmenter": {"data": [{"dataset": "demo", "split": "val"}], "device": "cpu", "input_size": 64,
                               "steps": 4, "batch_size": 2, "warmup_steps": 0, "eval_every": 2}},
    "stages": {"graph": {"device": "cpu", "mobilenet_v2": {"node_size": 64}, "temporal_size": [64, 64]}},
    "variants": {
        "online": {"method": "graph", "description": "graph segments the detect boxes itself with the trained model",
                   "stages": {"segment": TRAINED_SEGMENTER, "graph": {"proposals": "online", "temporal": False}}},
        "cached": {"method": "graph", "description": "segment stage with the trained model, then the graph",
                   "stages": {"segment": TRAINED_SEGMENTER, "graph": {"proposals": "cached", "temporal": False}}},
        "online-ol": {"method": "graph", "description": "online graph, segmenter fine-tuned per video first",
                      "stages": {"segment": OL_SEGMENTER, "graph": {"proposals": "online", "temporal": False}}},
        "cached-ol": {"method": "graph", "description": "segment stage with the per-video fine-tuned segmenter",
                      "stages": {"segment": OL_SEGMENTER, "graph": {"proposals": "cached", "temporal": False}}},
    },
    "default_variant": "online",
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("train-workflow")
    make_workdir(workdir, OVERRIDE)
    snakemake(workdir, "results/demo_val__online", "results/demo_val__cached", "results/demo_val__online-ol",
              "results/demo_val__cached-ol")
    return workdir


def run_info(workdir, variant: str) -> dict:
    return json.loads((workdir / "results" / f"demo_val__{variant}" / "run.json").read_text())


def test_training_writes_a_model_the_runs_use(trained_run):
    models = [p for p in (trained_run / "cache" / "models" / "segmenter").iterdir() if not p.name.startswith(".")]
    assert len(models) == 1, "both variants share one training job"
    record = json.loads((models[0] / "training.json").read_text())
    assert record["steps"] == 4 and len(record["history"]) == 2
    assert len(record["data"][0]["videos"]) == 2 and all(n >= 12 for n in record["data"][0]["videos"].values())
    online = run_info(trained_run, "online")
    assert "segment" not in online["keys"], "an online graph runs no segment stage"
    assert online["stages_used"]["graph"]["segmenter"]["weights"]["file"] == "model.pt"
    cached = run_info(trained_run, "cached")
    assert models[0].name in cached["settings"]["segment"]["deeplab"]["weights"]
    assert not (trained_run / "cache" / "models" / "segmenter" / ".work" / models[0].name).exists()


def test_training_change_retrains_and_reruns_only_what_reads_the_model(trained_run):
    changed = trained_run / "steps.yaml"
    changed.write_text(yaml.safe_dump({"training": {"segmenter": {"steps": 5}}}))
    online = snakemake(trained_run, "-n", "results/demo_val__online", extra_config=changed)
    assert planned_jobs(online) == {"train_segmenter": 1, "graph": 2, "metrics": 1}
    cached = snakemake(trained_run, "-n", "results/demo_val__cached", extra_config=changed)
    assert planned_jobs(cached) == {"train_segmenter": 1, "segment": 2, "graph": 2, "metrics": 1}


def test_execution_only_training_setting_changes_nothing(trained_run):
    changed = trained_run / "device.yaml"
    changed.write_text(yaml.safe_dump({"training": {"segmenter": {"device": "auto"}}}))
    result = snakemake(trained_run, "-n", "results/demo_val__online", extra_config=changed)
    assert planned_jobs(result) == {}


def test_online_learning_fine_tunes_each_video_from_the_trained_model(trained_run):
    online = run_info(trained_run, "online-ol")
    key = online["keys"]["online"]
    assert run_info(trained_run, "cached-ol")["keys"]["online"] == key, "one online model per video for both"
    folders = sorted((trained_run / "cache" / "demo" / "online" / key).iterdir())
    assert len(folders) == 2
    trained = [p for p in (trained_run / "cache" / "models" / "segmenter").iterdir() if not p.name.startswith(".")][0]
    for folder in folders:
        record = json.loads((folder / "training.json").read_text())
        assert record["video"] == folder.name and record["steps"] == 2
        assert record["start"]["file"] == "model.pt" and trained.name in record["settings"]["deeplab"]["weights"]
    segmenter = online["stages_used"]["graph"]["segmenter"]
    assert segmenter["online_learning"]["steps"] == 2 and segmenter["weights"]["file"] == "model.pt"
    assert online["timing"]["online"]["jobs"] == 2
    assert online["keys"]["graph"] != run_info(trained_run, "online")["keys"]["graph"]


def test_online_learning_change_reruns_it_and_what_reads_it_only(trained_run):
    changed = trained_run / "online.yaml"
    more = {**ONLINE_LEARNING, "steps": 3}
    changed.write_text(yaml.safe_dump({"variants": {
        name: {"stages": {"segment": {"deeplab": {"online_learning": more}}}} for name in ("online-ol", "cached-ol")}}))
    online = snakemake(trained_run, "-n", "results/demo_val__online-ol", extra_config=changed)
    assert planned_jobs(online) == {"online_learning": 2, "graph": 2, "metrics": 1}
    cached = snakemake(trained_run, "-n", "results/demo_val__cached-ol", extra_config=changed)
    assert planned_jobs(cached) == {"online_learning": 2, "segment": 2, "graph": 2, "metrics": 1}
    retrain = trained_run / "retrain.yaml"
    retrain.write_text(yaml.safe_dump({"training": {"segmenter": {"steps": 5}}}))
    both = snakemake(trained_run, "-n", "results/demo_val__online-ol", extra_config=retrain)
    assert planned_jobs(both) == {"train_segmenter": 1, "online_learning": 2, "graph": 2, "metrics": 1}
