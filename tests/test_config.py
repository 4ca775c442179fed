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


def test_parse_run_name(config):
    assert parse_run_name(config, "demo_val") == ("demo", "val", config["default_variant"])
    assert parse_run_name(config, "davis17_val__propagate") == ("davis17", "val", "propagate")
    with pytest.raises(InputError, match="unknown variant"):
        parse_run_name(config, "demo_val__nope")
    with pytest.raises(InputError, match="no configured dataset"):
        parse_run_name(config, "kitti_val")
    with pytest.raises(InputError, match="split 'test'"):
        parse_run_name(config, "demo_test")
