"""Stage settings: the schema's defaults are the only ones, and they agree with config/config.yaml."""

from __future__ import annotations

import inspect
from typing import Any

import jsonschema
import pytest

from stg.config import load_config
from stg.errors import InputError
from stg.graph.settings import GraphSettings
from stg.settings import complete, defaults, stage_names, stage_schema, stage_settings
from stg.stages import STAGES
from stg.warp.stage import PropagateSettings, WarpSettings


def _pairs(config: Any, filled: Any, path: str) -> list[tuple[str, Any, Any]]:
    """(key, config value, schema-filled value) for every leaf key present in both."""
    if isinstance(config, dict) and isinstance(filled, dict):
        return [pair for key in sorted(set(config) & set(filled))
                for pair in _pairs(config[key], filled[key], f"{path}.{key}")]
    return [(path, config, filled)]


@pytest.mark.parametrize("stage", stage_names())
def test_schema_defaults_equal_the_shipped_config(stage):
    """The config states every default explicitly; a drift between the two would change keys silently."""
    config = load_config()["stages"][stage]
    pairs = _pairs(config, defaults(stage), f"stages.{stage}")
    assert len(pairs) >= len(config)  # every key of the config's stage section has a schema default
    drifts = [(key, ours, schema) for key, ours, schema in pairs if ours != schema]
    assert not drifts, f"config/config.yaml and the schema's defaults differ: {drifts}"


@pytest.mark.parametrize("stage", stage_names())
def test_every_setting_has_a_default_and_the_defaults_validate(stage):
    filled = defaults(stage)
    jsonschema.Draft202012Validator(stage_schema(stage)).validate(filled)

    def missing(node: dict, values: dict, path: str) -> list[str]:
        out = []
        for name, child in node.get("properties", {}).items():
            if name not in values:
                out.append(f"{path}.{name}")
            elif "properties" in child:
                out += missing(child, values[name], f"{path}.{name}")
        return out

    assert missing(stage_schema(stage), filled, f"stages.{stage}") == []


def test_complete_fills_nested_defaults_and_keeps_given_values():
    filled = stage_settings("flow", {"backend": "raft", "raft": {"num_flow_updates": 3}})
    assert filled["raft"] == {"model": "raft_large", "weights": None, "num_flow_updates": 3, "batch_size": 4}
    assert filled["dis"]["preset"] == "medium" and filled["device"] == "auto"
    given = {"fb_alpha": 0.2}
    assert complete(stage_schema("warp"), given)["fb_alpha"] == 0.2 and given == {"fb_alpha": 0.2}  # not mutated
    assert stage_settings("warp", stage_settings("warp", {})) == stage_settings("warp", {})  # idempotent


def test_resolved_drifts():
    assert defaults("warp")["occluded_weight"] == 0.5  # the measured config value, not stage.py's old 1.0
    assert defaults("graph")["memory_values"] == "chosen"
    assert stage_settings("graph", {"memory_values": "final"})["memory_values"] == "final"
    with pytest.raises(InputError, match="memory_values"):
        stage_settings("graph", {"memory_values": "last"})


@pytest.mark.parametrize(("stage", "values", "where", "problem"), [
    ("warp", {"bogus": 1}, "stages.warp", "'bogus' was unexpected"),
    ("warp", {"fb_alpha": "high"}, "stages.warp.fb_alpha", "not of type 'number'"),
    ("graph", {"threshold": 1.0}, "stages.graph.threshold", "maximum"),
    ("graph", {"temporal_size": [32, 8]}, "stages.graph.temporal_size.1", "minimum"),
    ("detect", {"torchvision": {"store_masks": "yes"}}, "stages.detect.torchvision.store_masks", "boolean"),
    ("segment", {"grabcut": {"max_side": 4}}, "stages.segment.grabcut.max_side", "minimum"),
    ("flow", {"dis": {"presett": "fast"}}, "stages.flow.dis", "'presett' was unexpected"),
])
def test_bad_settings_name_the_key(stage, values, where, problem):
    with pytest.raises(InputError) as info:
        stage_settings(stage, values)
    assert info.value.where == where and problem in info.value.problem
    with pytest.raises(InputError) as info:
        stage_settings(stage, values, source="--settings")
    assert info.value.where == f"--settings: key '{where}'"


def test_typed_settings_are_built_from_the_schema():
    graph = GraphSettings.from_dict({"temporal_size": [32, 40], "passes": 2, "device": "cpu"})
    assert graph.temporal_size == (32, 40) and graph.memory_values == "chosen" and graph.spatial_iterations == 2
    assert not GraphSettings.from_dict({"temporal": False, "spatial_iterations": 0}).needs_features
    assert GraphSettings.from_dict({"temporal": False}).needs_features
    assert WarpSettings.from_dict({}).occluded_weight == 0.5
    assert PropagateSettings.from_dict({"threshold": 0.3}).threshold == 0.3
    with pytest.raises(InputError, match="stages.propagate.threshold"):
        PropagateSettings.from_dict({"threshold": "half"})


def test_memory_policies_match_the_schema():
    from stg.graph.temporal import MEMORY_POLICIES

    assert tuple(stage_schema("graph")["properties"]["memory"]["enum"]) == MEMORY_POLICIES


@pytest.mark.parametrize("stage", [name for name, stage in STAGES.items() if stage.backends])
def test_backend_constructor_defaults_equal_the_schema(stage):
    """Backend classes keep keyword defaults for direct use (tests, benchmarks); they must not drift."""
    filled = defaults(stage)
    for name, entry in STAGES[stage].registry().items():
        parameters = inspect.signature(entry.load()).parameters
        settings = stage_schema(stage)["properties"][name]["properties"]
        if entry.build is not None:  # built by its own function (a union: member objects, not their names)
            settings = {setting: spec for setting, spec in settings.items() if setting != "backends"}
        assert set(settings) <= set(parameters), f"{entry.target} does not take {set(settings) - set(parameters)}"
        for setting, spec in settings.items():
            if "properties" in spec:  # a nested block (deeplab.online_learning): the workflow's, recorded only
                assert parameters[setting].default is None, f"{entry.target}({setting}=...)"
                continue
            assert parameters[setting].default == filled[name][setting], f"{entry.target}({setting}=...)"
        assert ("device" in parameters) == entry.device, entry.target
