"""End to end: the graph method on a reduced demo through Snakemake; what each change re-plans; refinement passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from workflow_helpers import REPO, make_workdir, planned_jobs, snakemake

pytestmark = pytest.mark.slow

# These tests follow the cached-proposal chain's stores (segment stage, then graph): the weight-free chain is pinned
# for every variant, Table 4's too (the defaults are the learned, online chain: see default_chain below).
WEIGHTFREE = {"detect": {"backend": "motion"}, "segment": {"backend": "grabcut"},
              "graph": {"proposals": "cached", "threshold": 0.2}}
# The config's default chain (detect, segment and proposals settings of config/config.yaml), as a variant.
CONFIG_STAGES = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["stages"]
DEFAULT_CHAIN = {"detect": {"backend": CONFIG_STAGES["detect"]["backend"]},
                 "segment": {"backend": CONFIG_STAGES["segment"]["backend"]},
                 "graph": {"proposals": CONFIG_STAGES["graph"]["proposals"], "passes": 2}}

# On top of the reduced demo (.test/config/config.yaml): the full STG-Net (2 passes), one pass of it, Table 4's
# baseline, a graph-only change, and the default chain with 2 passes (planned only).
GRAPH_OVERRIDE = {
    "stages": {**WEIGHTFREE, "graph": {**WEIGHTFREE["graph"], "device": "cpu", "mobilenet_v2": {"node_size": 128}}},
    "variants": {
        "default2": {"method": "graph", "description": "the default chain, two passes", "stages": DEFAULT_CHAIN},
        "stg2": {"method": "graph", "description": "full STG-Net, two passes", "stages": {"graph": {"passes": 2}}},
        "stg1": {"method": "graph", "description": "full STG-Net, one pass", "stages": {"graph": {"passes": 1}}},
        "stg1-l1": {"method": "graph", "description": "one pass, l = 1 (graph-only change)",
                    "stages": {"graph": {"passes": 1, "spatial_iterations": 1}}},
    },
    "default_variant": "stg2",
}


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("graph-workflow")
    make_workdir(workdir, GRAPH_OVERRIDE)
    snakemake(workdir, "results/demo_val__stg2", "results/demo_val__propagate", "results/demo_val__baseline")
    return workdir


def scores(workdir: Path, variant: str) -> dict:
    return json.loads((workdir / "results" / f"demo_val__{variant}" / "run.json").read_text())


def test_graph_run_outputs_and_passes(graph_run):
    info = scores(graph_run, "stg2")
    assert info["method"] == "graph"
    nodes = set(info["keys"])
    assert {"flow", "warp", "detect", "segment", "graph", "warp@2", "detect@2", "segment@2", "graph@2"} <= nodes
    assert info["keys"]["graph@2"] != info["keys"]["graph"] and info["keys"]["warp@2"] != info["keys"]["warp"]
    assert info["settings"]["warp@2"]["source"] == "previous_pass"
    assert info["timing"]["graph"]["jobs"] == 4          # 2 videos x 2 passes
    assert info["stages_used"]["graph"]["backend"]["backend"] == "mobilenet_v2"
    pass2_warp = graph_run / "cache" / "demo" / "warp" / info["keys"]["warp@2"]
    from stg.store import open_store

    warp = open_store(next(pass2_warp.glob("*.zarr")), "warp")
    assert warp.attrs["source"]["source"] == "previous_pass"
    assert info["keys"]["graph"] in warp.attrs["source"]["store"]


def test_full_variant_beats_propagate_and_baseline(graph_run):
    full = scores(graph_run, "stg2")["global"]["J&F-Mean"]
    assert full > scores(graph_run, "propagate")["global"]["J&F-Mean"]
    assert full > scores(graph_run, "baseline")["global"]["J&F-Mean"]


def test_one_pass_shares_every_store_of_the_two_pass_run(graph_run):
    result = snakemake(graph_run, "-n", "results/demo_val__stg1")
    assert planned_jobs(result) in ({"metrics": 1}, {})


def test_graph_only_change_reruns_only_graph(graph_run):
    result = snakemake(graph_run, "-n", "results/demo_val__stg1-l1")
    assert planned_jobs(result) == {"graph": 2, "metrics": 1}


def test_graph_change_in_two_pass_run_reruns_the_second_pass(graph_run):
    changed = graph_run / "changed.yaml"
    changed.write_text(yaml.safe_dump({"stages": {"graph": {"lambda1": 0.5}}}))
    result = snakemake(graph_run, "-n", "results/demo_val__stg2", extra_config=changed)
    assert planned_jobs(result) == {"graph": 4, "warp": 2, "detect": 2, "segment": 2, "metrics": 1}


def test_segment_change_reruns_segment_and_graph(graph_run):
    result = snakemake(graph_run, "-n", "results/demo_val__stg1", "--forcerun", "segment")
    assert planned_jobs(result) == {"segment": 2, "graph": 2, "metrics": 1}


def test_default_chain_plans_online_passes_without_segment_jobs(graph_run):
    """The default chain (online proposals) shares flow and the first warp with the cached run; its graph segments
    the detect boxes itself, in both passes: no segment job."""
    assert DEFAULT_CHAIN == {"detect": {"backend": "union"}, "segment": {"backend": "deeplab"},
                             "graph": {"proposals": "online", "passes": 2}}
    result = snakemake(graph_run, "-n", "results/demo_val__default2")
    assert planned_jobs(result) == {"detect": 4, "graph": 4, "warp": 2, "metrics": 1}


def test_execution_only_graph_setting_changes_nothing(graph_run):
    changed = graph_run / "device.yaml"
    changed.write_text(yaml.safe_dump({"stages": {"graph": {"mobilenet_v2": {"batch_size": 3}}}}))
    result = snakemake(graph_run, "-n", "results/demo_val__stg2", extra_config=changed)
    assert planned_jobs(result) == {}


def test_identical_inputs_give_byte_identical_pngs(graph_run):
    """Recomputing a graph store from the same cached inputs writes the same PNGs, byte for byte (runs last:
    it computes the stg1-l1 variant that the dry runs above expect to be missing)."""
    pngs = graph_run / "results" / "demo_val__stg1-l1" / "Annotations"
    snakemake(graph_run, "results/demo_val__stg1-l1")
    first = {p.relative_to(pngs): p.read_bytes() for p in pngs.glob("*/*.png")}
    snakemake(graph_run, "results/demo_val__stg1-l1", "--forcerun", "graph")
    again = {p.relative_to(pngs): p.read_bytes() for p in pngs.glob("*/*.png")}
    assert len(first) >= 24 and first == again
