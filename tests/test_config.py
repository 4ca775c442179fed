"""Config validation and stage keys: what changes a key and what does not."""

import copy

import pytest

from stg.config import load_config, parse_run_name, plan_run, semantic_settings, validate_config
from stg.errors import InputError


@pytest.fixture()
def config():
    return load_config()


def test_shipped_config_is_valid(config):
    validate_config(config)


@pytest.mark.parametrize("mutate, key, problem", [
    (lambda c: c["stages"]["warp"].update(fb_alfa=0.1), "stages.warp", "fb_alfa"),
    (lambda c: c["stages"]["warp"].update(fb_alpha="big"), "stages.warp.fb_alpha", "not of type"),
    (lambda c: c["stages"]["flow"].update(backend="flownet2"), "stages.flow.backend", "flownet2"),
    (lambda c: c.update(colour="red"), "(top level)", "colour"),
    (lambda c: c["datasets"]["demo"].update(layout="kitti"), "datasets.demo.layout", "kitti"),
    (lambda c: c["stages"]["flow"].update(device="gpu"), "stages.flow.device", "gpu"),
    (lambda c: c.update(default_variant="nope"), "default_variant", "nope"),
    (lambda c: c["variants"]["propagate"].update(stages={"warp": {"fb_beta": -1}}), "fb_beta", "minimum"),
])
def test_bad_config_names_the_key(config, mutate, key, problem):
    mutate(config)
    with pytest.raises(InputError) as error:
        validate_config(config)
    assert key in str(error.value)
    assert problem in str(error.value)


def test_downstream_change_keeps_upstream_keys(config):
    base = plan_run(config, "demo", "val", "propagate")
    changed = copy.deepcopy(config)
    changed["stages"]["warp"]["fb_beta"] = 1.0
    other = plan_run(changed, "demo", "val", "propagate")
    assert other.keys["flow"] == base.keys["flow"]
    assert other.keys["warp"] != base.keys["warp"]
    assert other.keys["propagate"] != base.keys["propagate"]


def test_execution_only_and_unused_backend_settings_do_not_change_keys(config):
    base = plan_run(config, "demo", "val", "propagate")
    changed = copy.deepcopy(config)
    changed["stages"]["flow"]["device"] = "cuda"
    changed["stages"]["flow"]["raft"]["num_flow_updates"] = 32  # raft is not the chosen backend
    assert plan_run(changed, "demo", "val", "propagate").keys == base.keys


def test_flow_key_depends_on_dataset_settings(config):
    base = plan_run(config, "demo", "val", "propagate")
    changed = copy.deepcopy(config)
    changed["datasets"]["demo"]["synthetic"]["seed"] = 7
    assert plan_run(changed, "demo", "val", "propagate").keys["flow"] != base.keys["flow"]


def test_semantic_settings_keeps_only_chosen_backend():
    settings = {"backend": "dis", "device": "cpu", "dis": {"preset": "fast"}, "raft": {"model": "raft_small"}}
    assert semantic_settings("flow", settings) == {"backend": "dis", "dis": {"preset": "fast"}}


@pytest.mark.parametrize(("backend", "changes_key"), [("union", True), ("motion", False)])
def test_a_union_members_settings_are_in_the_detect_key(config, backend, changes_key):
    variant = next(name for name, spec in config["variants"].items() if spec["method"] == "graph")
    config["stages"]["detect"].update(backend=backend, union={"backends": ["yolox", "motion"], "batch_size": 8})
    base = plan_run(config, "demo", "val", variant)
    changed = copy.deepcopy(config)
    changed["stages"]["detect"]["yolox"]["score_thresh"] = 0.3
    changed["stages"]["detect"]["yolox"]["batch_size"] = 1  # execution only, in a member's block too
    changed["stages"]["detect"]["union"]["batch_size"] = 2
    other = plan_run(changed, "demo", "val", variant)
    assert (other.keys["detect"] != base.keys["detect"]) == changes_key
    assert other.keys["warp"] == base.keys["warp"]
    batch_only = copy.deepcopy(config)
    batch_only["stages"]["detect"]["yolox"]["batch_size"] = 1
    batch_only["stages"]["detect"]["motion"]["batch_size"] = 3
    assert plan_run(batch_only, "demo", "val", variant).keys == base.keys


def test_semantic_settings_of_a_union_keep_its_members_blocks():
    settings = {"backend": "union", "device": "cpu", "union": {"backends": ["yolox", "motion"], "batch_size": 8},
                "yolox": {"score_thresh": 0.1, "batch_size": 8}, "motion": {"seed": 1}, "mmdet": {"config": None}}
    assert semantic_settings("detect", settings) == {"backend": "union", "union": {"backends": ["yolox", "motion"]},
                                                     "yolox": {"score_thresh": 0.1}, "motion": {"seed": 1}}


def test_parse_run_name(config):
    assert parse_run_name(config, "demo_val") == ("demo", "val", config["default_variant"])
    assert parse_run_name(config, "davis17_val__propagate") == ("davis17", "val", "propagate")
    with pytest.raises(InputError, match="unknown variant"):
        parse_run_name(config, "demo_val__nope")
    with pytest.raises(InputError, match="no configured dataset"):
        parse_run_name(config, "kitti_val")
    with pytest.raises(InputError, match="split 'test'"):
        parse_run_name(config, "demo_test")


def test_omitted_setting_and_its_stated_default_give_one_key(config):
    base = plan_run(config, "demo", "val", "temporal")
    omitted = copy.deepcopy(config)
    del omitted["stages"]["warp"]["fb_alpha"]  # 0.01, the schema's default
    del omitted["stages"]["graph"]["mobilenet_v2"]
    assert plan_run(omitted, "demo", "val", "temporal").keys == base.keys
    assert plan_run(config, "demo", "val", "temporal").keys == base.keys  # deterministic


def test_plan_settings_are_the_config_values_completed_from_the_schema(config):
    plan = plan_run(config, "demo", "val", "temporal")

    def contains(full, given):
        return all(contains(full[k], v) if isinstance(v, dict) else full[k] == v for k, v in given.items())

    from stg.config import effective_stages

    given = effective_stages(config, "temporal")  # the config's stages under the variant's
    for stage in plan.nodes:
        assert contains(plan.settings[stage], given[stage]), stage
    assert plan.settings["graph"]["memory_values"] == "chosen"  # not in the config: the schema's default


def test_stage_settings_errors_read_like_the_config_file_errors(config):
    from stg.settings import stage_settings

    config["stages"]["warp"]["fb_alpha"] = "high"
    with pytest.raises(InputError) as from_config:
        validate_config(config, "config")
    with pytest.raises(InputError) as from_cli:
        stage_settings("warp", config["stages"]["warp"], source="config")
    assert str(from_cli.value) == str(from_config.value)


# ---------------------------------------------------------------------------------------------- layouts' defaults


def _with_dataset(config, layout, **extra):
    changed = copy.deepcopy(config)
    changed["datasets"]["other"] = {"layout": layout, "root": "data/other", "splits": ["all"], **extra}
    return changed


@pytest.mark.parametrize("layout", ["davis2017", "davis2016", "youtube_vos", "segtrack_v2", "youtube_objects",
                                    "folder", "synthetic"])
def test_schema_accepts_every_layout(config, layout):
    validate_config(_with_dataset(config, layout))


def test_layout_defaults_sit_under_config_dataset_and_variant(config):
    from stg.config import effective_stages

    segtrack = _with_dataset(config, "segtrack_v2")
    graph = plan_run(segtrack, "other", "all", "temporal").settings["graph"]
    assert (graph["alpha"], graph["beta"]) == (0.1, 0.9)
    davis = plan_run(config, "demo", "val", "temporal").settings["graph"]
    assert (davis["alpha"], davis["beta"]) == (0.7, 0.3)
    # the config's stages: win over the layout's defaults
    explicit = copy.deepcopy(segtrack)
    explicit["stages"]["graph"]["alpha"] = 0.5
    assert plan_run(explicit, "other", "all", "temporal").settings["graph"]["alpha"] == 0.5
    # the dataset's own stages win over the config's
    own = copy.deepcopy(explicit)
    own["datasets"]["other"]["stages"] = {"graph": {"alpha": 0.3}}
    validate_config(own)
    assert plan_run(own, "other", "all", "temporal").settings["graph"]["alpha"] == 0.3
    assert plan_run(own, "other", "all", "temporal").settings["graph"]["beta"] == 0.9
    # a variant that sets alpha wins over everything
    own["variants"]["temporal"]["stages"] = {"graph": {"alpha": 0.2}}
    assert plan_run(own, "other", "all", "temporal").settings["graph"]["alpha"] == 0.2
    assert effective_stages(own, "temporal", "other")["graph"]["beta"] == 0.9
    assert "beta" not in effective_stages(own, "propagate")["graph"]  # without a dataset: no layout layer


def test_dataset_stages_are_validated_and_keep_the_dataset_key(config):
    bad = _with_dataset(config, "folder", stages={"graph": {"alpha": "high"}})
    with pytest.raises(InputError) as error:
        validate_config(bad)
    assert "alpha" in str(error.value)
    plain = _with_dataset(config, "folder")
    tuned = _with_dataset(config, "folder", stages={"graph": {"threshold": 0.3}})
    base, other = plan_run(plain, "other", "all", "temporal"), plan_run(tuned, "other", "all", "temporal")
    assert other.keys["flow"] == base.keys["flow"] and other.keys["warp"] == base.keys["warp"]
    assert other.keys["graph"] != base.keys["graph"]


def test_davis_keys_unchanged_by_the_layout_layer(config):
    """DAVIS's layout defaults are the schema's: the keys are those of the stages alone."""
    from stg.config import stage_key

    plan = plan_run(config, "demo", "val", "temporal")
    assert plan.settings["graph"]["alpha"] == 0.7 and plan.settings["graph"]["beta"] == 0.3
    assert plan.keys["dataset"] == stage_key("dataset", config["datasets"]["demo"], [])


def test_a_stage_revision_changes_that_stages_keys_only(config):
    """A raised revision (the same settings now give another output) must rerun that stage and what follows, and
    nothing upstream: revision 0 leaves the key as it was before revisions existed."""
    import hashlib
    import json

    from stg.config import SCHEMA_VERSION, STAGE_REVISION, semantic_settings, stage_key

    def unrevised(stage, settings, upstream):
        payload = json.dumps({"stage": stage, "schema": SCHEMA_VERSION, "settings": settings, "upstream": upstream},
                             sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:10]

    assert STAGE_REVISION["graph"] >= 1 and STAGE_REVISION["flow"] == 0
    plan = plan_run(config, "demo", "val", "baseline")
    flow = semantic_settings("flow", plan.settings["flow"])
    assert plan.keys["flow"] == unrevised("flow", flow, [plan.keys["dataset"]])
    graph = semantic_settings("graph", plan.settings["graph"])
    assert stage_key("graph", graph, ["a"]) != unrevised("graph", graph, ["a"])


def test_a_neutral_setting_stays_out_of_the_key_until_it_is_used():
    """min_fragment 0 (edge_threshold 0, sender_nms 0, spatial_support image, temporal_threshold null, q_source
    final) leaves the graph's output as before it existed, so the stores made then keep their keys."""
    from stg.config import NEUTRAL_VALUES

    settings = {"backend": "mobilenet_v2", "mobilenet_v2": {"key_layer": 14}, "temporal": True}
    neutral = {"min_fragment": 0.0, "edge_threshold": 0.0, "sender_nms": 0.0, "spatial_support": "image",
               "temporal_threshold": None, "q_source": "final"}
    assert NEUTRAL_VALUES["graph"] == neutral
    assert semantic_settings("graph", {**settings, **neutral}) == settings
    assert semantic_settings("graph", {**settings, "min_fragment": 0.1}) == {**settings, "min_fragment": 0.1}
    used = {"sender_nms": 0.6, "spatial_support": "box", "temporal_threshold": 0.2, "q_source": "selected"}
    assert semantic_settings("graph", {**settings, **neutral, **used}) == {**settings, **used}
