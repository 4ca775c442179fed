"""Configuration: schema validation, per-variant effective settings, and content-addressed stage keys.

A stage's key hashes only the settings that change its output plus the keys of the stages it
reads, so two runs that differ downstream share every upstream store, and a changed setting
invalidates exactly its stage and what follows.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from stg.errors import InputError
from stg.store import SCHEMA_VERSION

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "config.yaml"

# Settings that change how a stage runs but not what it computes: kept out of the keys.
EXECUTION_ONLY = {"device", "batch_size"}
# Which stores each stage reads (its key hashes their keys), and each method's chain of stages;
# the chain's last stage writes the label maps that become the run's PNGs.
STAGE_UPSTREAM: dict[str, list[str]] = {"flow": ["dataset"], "warp": ["flow"], "propagate": ["warp"]}
METHOD_CHAINS: dict[str, list[str]] = {"propagate": ["flow", "warp", "propagate"]}


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _error_location(error: jsonschema.ValidationError) -> str:
    location = ".".join(str(part) for part in error.absolute_path)
    return location or "(top level)"


def validate_config(config: dict[str, Any], source: str = "config") -> None:
    """Raise InputError naming the offending key for the first schema violation."""
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(list(e.absolute_path)), str(e.path)))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        raise InputError(f"{source}: key '{_error_location(error)}'", error.message)
    if config["default_variant"] not in config["variants"]:
        raise InputError(f"{source}: key 'default_variant'",
                         f"'{config['default_variant']}' is not one of the variants {sorted(config['variants'])}")
    for name in config["variants"]:
        merged = {**config, "stages": effective_stages(config, name)}
        for error in validator.iter_errors(merged):
            raise InputError(f"{source}: variant '{name}', key '{_error_location(error)}'", error.message)


def load_config(path: str | Path = DEFAULT_CONFIG_PATH) -> dict[str, Any]:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "config file is missing") from None
    except yaml.YAMLError as error:
        raise InputError(path, f"config file is not valid YAML ({error})") from None
    validate_config(config, str(path))
    return config


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def effective_stages(config: dict[str, Any], variant: str) -> dict[str, Any]:
    """The config's stage settings with the variant's overrides applied."""
    return deep_merge(config["stages"], config["variants"][variant].get("stages", {}))


def semantic_settings(stage: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that determine a stage's output: the chosen backend's only, no execution knobs."""
    settings = {k: v for k, v in settings.items() if k not in EXECUTION_ONLY}
    backend = settings.get("backend")
    if backend is not None:
        backend_names = {k for k, v in settings.items() if isinstance(v, dict)}
        settings = {k: v for k, v in settings.items() if k not in backend_names or k == backend}
        if isinstance(settings.get(backend), dict):
            settings[backend] = {k: v for k, v in settings[backend].items() if k not in EXECUTION_ONLY}
    return settings


def stage_key(stage: str, settings: dict[str, Any], upstream: list[str]) -> str:
    """Short content hash of a stage's semantic settings and its upstream keys."""
    payload = json.dumps({"stage": stage, "schema": SCHEMA_VERSION, "settings": settings, "upstream": upstream},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def dataset_settings(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    return copy.deepcopy(config["datasets"][dataset])


@dataclass(frozen=True)
class RunPlan:
    """Everything the workflow needs to know about one run target."""

    run: str
    dataset: str
    split: str
    variant: str
    method: str
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def store(self, stage: str, video: str) -> str:
        return f"cache/{self.dataset}/{stage}/{self.keys[stage]}/{video}.zarr"


def plan_run(config: dict[str, Any], dataset: str, split: str, variant: str, run: str = "") -> RunPlan:
    stages = effective_stages(config, variant)
    method = config["variants"][variant]["method"]
    settings: dict[str, dict[str, Any]] = {"dataset": dataset_settings(config, dataset)}
    keys: dict[str, str] = {"dataset": stage_key("dataset", settings["dataset"], [])}
    for stage in METHOD_CHAINS[method]:
        settings[stage] = stages.get(stage, {})
        upstream = [keys[name] for name in STAGE_UPSTREAM[stage]]
        keys[stage] = stage_key(stage, semantic_settings(stage, settings[stage]), upstream)
    return RunPlan(run or f"{dataset}_{split}__{variant}", dataset, split, variant, method, settings, keys)


def parse_run_name(config: dict[str, Any], run: str) -> tuple[str, str, str]:
    """'<dataset>_<split>[__<variant>]' -> (dataset, split, variant), with clear errors."""
    base, _, variant = run.partition("__")
    variant = variant or config["default_variant"]
    if variant not in config["variants"]:
        raise InputError(f"results/{run}", f"unknown variant '{variant}' (config variants: "
                         f"{', '.join(sorted(config['variants']))})")
    for dataset in sorted(config["datasets"], key=len, reverse=True):
        if base.startswith(dataset + "_"):
            split = base[len(dataset) + 1:]
            splits = config["datasets"][dataset].get("splits")
            if splits and split not in splits:
                raise InputError(f"results/{run}", f"split '{split}' is not among dataset '{dataset}' splits {splits}")
            return dataset, split, variant
    raise InputError(f"results/{run}", f"no configured dataset matches (datasets: {', '.join(config['datasets'])})")
