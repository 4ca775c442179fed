"""Run plans of the graph method: chain, keys, and refinement passes."""

import copy

import pytest

from stg.config import load_config, node_stage, plan_run


@pytest.fixture()
def config():
    return load_config()


def with_graph(config, **graph):
    """A copy of `config` with these stages.graph settings (e.g. passes, proposals)."""
    changed = copy.deepcopy(config)
    changed["stages"]["graph"].update(graph)
    return changed


def with_passes(config, passes, proposals=None):
    return with_graph(config, passes=passes, **({} if proposals is None else {"proposals": proposals}))


def with_proposals(config, proposals):
    return with_graph(config, proposals=proposals)


def test_graph_chain_and_upstream(config):
    plan = plan_run(with_passes(config, 1), "demo", "val", "temporal")   # default: online proposals
    assert plan.nodes == ["flow", "warp", "detect", "graph"]
    assert plan.upstream["graph"] == {"detect": "detect", "warp": "warp", "flow": "flow"}
    assert plan.store("graph", "v") == f"cache/demo/graph/{plan.keys['graph']}/v.zarr"
    assert plan.segmenter["graph"]["backend"] == "deeplab"   # the default segmenter runs inside the graph
    cached = plan_run(with_passes(config, 1, "cached"), "demo", "val", "temporal")
    assert cached.nodes == ["flow", "warp", "detect", "segment", "graph"]
    assert cached.upstream["graph"] == {"segment": "segment", "warp": "warp", "flow": "flow"}
    assert cached.store("graph", "v") == f"cache/demo/graph/{cached.keys['graph']}/v.zarr"
    assert cached.segmenter == {}
    assert plan_run(config, "demo", "val", "weightfree").nodes == cached.nodes   # the old default, by name


def test_second_pass_nodes_roles_and_paths_online(config):
    one = plan_run(with_passes(config, 1), "demo", "val", "temporal")
    two = plan_run(with_passes(config, 2), "demo", "val", "temporal")
    assert two.nodes == ["flow", "warp", "detect", "graph", "warp@2", "detect@2", "graph@2"]
    assert {n: two.keys[n] for n in one.nodes} == {n: one.keys[n] for n in one.nodes}   # pass 1 is shared
    assert two.upstream["warp@2"] == {"flow": "flow", "previous_labels": "graph"}
    assert two.upstream["detect@2"] == {"warp": "warp@2"}
    assert two.upstream["graph@2"] == {"detect": "detect@2", "warp": "warp@2", "flow": "flow"}
    assert set(two.segmenter) == {"graph", "graph@2"}
    for stage in ("warp", "detect", "graph"):
        assert two.keys[f"{stage}@2"] != two.keys[stage]
    three = plan_run(with_passes(config, 3), "demo", "val", "temporal")
    assert three.upstream["warp@3"]["previous_labels"] == "graph@2"
    assert three.keys["graph@2"] == two.keys["graph@2"]


def test_second_pass_nodes_roles_and_paths(config):
    one = plan_run(with_passes(config, 1, "cached"), "demo", "val", "temporal")
    two = plan_run(with_passes(config, 2, "cached"), "demo", "val", "temporal")
    assert two.nodes == ["flow", "warp", "detect", "segment", "graph", "warp@2", "detect@2", "segment@2", "graph@2"]
    assert {n: two.keys[n] for n in one.nodes} == {n: one.keys[n] for n in one.nodes}   # pass 1 is shared
    assert two.upstream["warp@2"] == {"flow": "flow", "previous_labels": "graph"}
    assert two.upstream["detect@2"] == {"warp": "warp@2"}
    assert two.upstream["segment@2"] == {"detect": "detect@2", "warp": "warp@2"}
    assert two.upstream["graph@2"] == {"segment": "segment@2", "warp": "warp@2", "flow": "flow"}
    assert two.settings["warp@2"]["source"] == "previous_pass" and two.settings["warp"]["source"] == "first_frame"
    for stage in ("warp", "detect", "segment", "graph"):
        assert two.keys[f"{stage}@2"] != two.keys[stage]
    assert two.store("warp@2", "v") == f"cache/demo/warp/{two.keys['warp@2']}/v.zarr"
    assert two.benchmark("graph@2", "v") == f"cache/demo/benchmarks/graph/{two.keys['graph@2']}/v.tsv"
    three = plan_run(with_passes(config, 3, "cached"), "demo", "val", "temporal")
    assert three.upstream["warp@3"]["previous_labels"] == "graph@2"
    assert three.keys["graph@2"] == two.keys["graph@2"]
    assert node_stage("segment@3") == "segment"


@pytest.mark.parametrize(("proposals", "upstream"), [
    ("online", ("flow", "warp", "detect")),             # the default: no segment stage
    ("cached", ("flow", "warp", "detect", "segment")),
])
def test_graph_settings_change_only_graph_keys(config, proposals, upstream):
    config = with_proposals(config, proposals)
    base = plan_run(config, "demo", "val", "temporal")
    assert [n for n in base.nodes if n != "graph"] == list(upstream)
    changed = copy.deepcopy(config)
    changed["stages"]["graph"]["q_threshold"] = 0.3
    other = plan_run(changed, "demo", "val", "temporal")
    assert all(other.keys[s] == base.keys[s] for s in upstream)
    assert other.keys["graph"] != base.keys["graph"]
    changed["stages"]["graph"]["device"] = "cuda"
    changed["stages"]["graph"]["mobilenet_v2"]["batch_size"] = 2
    changed["stages"]["graph"]["resnet"]["node_weights"] = "/elsewhere.pth"   # not the chosen backend
    assert plan_run(changed, "demo", "val", "temporal").keys == other.keys


@pytest.mark.parametrize(("proposals", "shared"), [("online", "detect"), ("cached", "segment")])
def test_table4_variants_share_upstream_stores(config, proposals, shared):
    config = with_proposals(config, proposals)
    plans = {v: plan_run(config, "demo", "val", v) for v in ("baseline", "motion", "spatial", "temporal")}
    assert all(("segment" in p.nodes) == (proposals == "cached") for p in plans.values())
    assert len({p.keys[shared] for p in plans.values()}) == 1
    assert len({p.keys["graph"] for p in plans.values()}) == 4
    assert config["default_variant"] == "baseline-ol"  # the best chain measured on the check fold (README)
    default, greedy = plan_run(config, "demo", "val", "baseline-ol"), plans["baseline"]
    assert default.online and not greedy.online and default.keys["detect"] == greedy.keys["detect"]
    assert default.keys["graph"] != greedy.keys["graph"]
    assert plan_run(config, "demo", "val", "propagate").nodes == ["flow", "warp", "propagate"]
