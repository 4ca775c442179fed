"""End to end: Snakemake runs the reduced demo, then re-plans exactly what a change touches."""

from __future__ import annotations

import json

import pytest
import yaml
from workflow_helpers import make_workdir, planned_jobs, snakemake

pytestmark = pytest.mark.slow

# On top of the reduced demo (.test/config/config.yaml):
OVERRIDE = {
    "variants": {"propagate-lowthr": {"method": "propagate", "description": "a variant differing downstream only",
                                      "stages": {"propagate": {"threshold": 0.4}}}},
    "default_variant": "propagate",  # the shipped default (the full STG-Net) is exercised in test_graph_workflow.py
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    make_workdir(workdir, OVERRIDE)
    result = snakemake(workdir, "results/demo_val")
    return workdir, result


def test_demo_outputs(demo_run):
    workdir, result = demo_run
    run = workdir / "results" / "demo_val"
    from stg.datasets.synthetic import video_names

    videos = video_names(2)
    for video in videos:
        pngs = sorted((run / "Annotations" / video).glob("*.png"))
        assert 12 <= len(pngs) <= 14
    from PIL import Image

    with Image.open(pngs[0]) as image:
        assert image.mode == "P"
    header = (run / "global_results-val.csv").read_text().splitlines()[0]
    assert header == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    assert (run / "per-sequence_results-val.csv").read_text().splitlines()[1].startswith(videos[0] + "_1,")
    info = json.loads((run / "run.json").read_text())
    assert info["variant"] == "propagate"
    assert set(info["keys"]) == {"dataset", "flow", "warp", "propagate"}
    assert {"flow", "warp", "propagate", "results"} <= set(info["timing"])
    assert info["timing"]["flow"]["jobs"] == 2
    assert info["stages_used"]["flow"]["backend"]["backend"] == "dis"
    assert "zarr" in info["packages"]
    assert "J&F-Mean" in result.stdout  # the global table is printed


def test_propagate_scores_well_on_reduced_demo(demo_run):
    workdir, _ = demo_run
    scores = json.loads((workdir / "results" / "demo_val" / "metrics.json").read_text())
    assert scores["global"]["J&F-Mean"] > 0.5


def test_nothing_to_do_after_full_run(demo_run):
    workdir, _ = demo_run
    result = snakemake(workdir, "-n", "results/demo_val")
    assert planned_jobs(result) == {}
    assert "Nothing to be done" in result.stdout + result.stderr


def test_changed_warp_setting_reruns_warp_and_downstream_only(demo_run):
    workdir, _ = demo_run
    changed = workdir / "changed.yaml"
    changed.write_text(yaml.safe_dump({"stages": {"warp": {"fb_beta": 0.75}}}))
    result = snakemake(workdir, "-n", "results/demo_val", extra_config=changed)
    assert planned_jobs(result) == {"warp": 2, "propagate": 2, "metrics": 1}


def test_forcerun_warp(demo_run):
    workdir, _ = demo_run
    # the target first: --forcerun takes every word after it, and without a target Snakemake runs rule all
    result = snakemake(workdir, "-n", "results/demo_val", "--forcerun", "warp")
    assert planned_jobs(result) == {"warp": 2, "propagate": 2, "metrics": 1}


def test_downstream_variant_reuses_upstream_stores(demo_run):
    workdir, _ = demo_run
    result = snakemake(workdir, "-n", "results/demo_val__propagate-lowthr")
    assert planned_jobs(result) == {"propagate": 2, "metrics": 1}


def test_named_default_variant_shares_every_store(demo_run):
    workdir, _ = demo_run
    result = snakemake(workdir, "-n", "results/demo_val__propagate")
    assert planned_jobs(result) == {"metrics": 1}


def test_bad_config_key_stops_the_workflow(demo_run):
    workdir, _ = demo_run
    bad = workdir / "bad.yaml"
    bad.write_text(yaml.safe_dump({"stages": {"warp": {"fb_betta": 0.75}}}))
    result = snakemake(workdir, "-n", "results/demo_val", extra_config=bad, check=False)
    assert result.returncode != 0
    assert "fb_betta" in result.stdout + result.stderr
