"""Trained models as cached artifacts: `cache/models/<model>/<key>/`, keyed by their settings and their data.

A model's key hashes its training settings (not the device), the keys of the datasets and flow stores it
learns from, and the videos with their frame counts, so changing any of them retrains it, and a stage that
reads the model (its key hashes the model's key) reruns exactly then.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from stg.config import (
    EXECUTION_ONLY,
    dataset_key,
    dataset_layout,
    dataset_root,
    deep_merge,
    semantic_settings,
    stage_key,
    video_names,
)
from stg.errors import InputError
from stg.settings import complete, stage_settings

MODELS_DIR = "cache/models"
TRAINED = "trained"  # stages.segment.deeplab.weights value naming the train_segmenter stage's model
MODEL_FILE = "model.pt"
# Settings a consumer of a trained segmenter takes from its training so that inference crops like training.
SEGMENTER_SHAPE = ("encoder", "input_size", "margin")
# The graph's mobilenet_v2 settings that follow a trained graph model (its network's shape).
GRAPH_SHAPE = ("node_size", "key_layer")
# The run plan behind train_graph's data: the training split through flow, warp, detect and segment.
GRAPH_TRAINING_VARIANT = "train-graph"


def training_settings(config: dict[str, Any], model: str = "segmenter") -> dict[str, Any]:
    """`training.<model>` completed with the schema's defaults."""
    values = config.get("training", {}).get(model, {})
    return complete({"$ref": f"#/$defs/{model}_training"}, copy.deepcopy(values))


@dataclass(frozen=True)
class TrainingPlan:
    """One model's training job: its key, settings, and the data entries it reads."""

    model: str
    key: str
    settings: dict[str, Any]
    data: list[dict[str, Any]]        # {dataset, split, root, layout, resolution, <role>_key of each read, videos}
    validation: list[dict[str, Any]]
    reads: tuple[str, ...] = ("flow",)  # the stores of each training video it reads (segmenter: flow)
    sources: tuple[Any, ...] = ()     # graph: the stg.config.RunPlan that makes each data entry's stores

    @property
    def folder(self) -> str:
        return f"{MODELS_DIR}/{self.model}/{self.key}"

    @property
    def work_folder(self) -> str:
        """Resumable checkpoints, outside the output folder (Snakemake removes a failed job's output)."""
        return f"{MODELS_DIR}/{self.model}/.work/{self.key}"

    @property
    def model_file(self) -> str:
        return f"{self.folder}/{MODEL_FILE}"

    def flow_stores(self) -> list[str]:
        return [path for entry in self.data + self.validation for path in _store_paths(entry, "flow").values()]

    def input_stores(self) -> list[str]:
        """Every store the training job reads (the `reads` stores of each training and validation video)."""
        return [path for entry in self.data + self.validation for role in self.reads
                for path in _store_paths(entry, role).values()]

    def data_arguments(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The CLI's --data / --validation: where each split is and each video's stores ({role: {video: store}})."""
        return [{"root": e["root"], "layout": e["layout"], "split": e["split"], "resolution": e["resolution"],
                 **{role: _store_paths(e, role) for role in self.reads}} for e in entries]


def _store_paths(entry: dict[str, Any], stage: str) -> dict[str, str]:
    return {video: f"cache/{entry['dataset']}/{stage}/{entry[stage + '_key']}/{video}.zarr"
            for video in entry["videos"]}


def _data_entries(config: dict[str, Any], entries: list[dict[str, str]], setting: str) -> list[dict[str, Any]]:
    flow = semantic_settings("flow", stage_settings("flow", config["stages"].get("flow", {})))
    resolved = []
    for entry in entries:
        name, split = entry["dataset"], entry["split"]
        if name not in config["datasets"]:
            raise InputError(setting, f"dataset '{name}' is not configured (datasets: {', '.join(config['datasets'])})")
        splits = config["datasets"][name].get("splits")
        if splits and split not in splits:
            raise InputError(setting, f"split '{split}' is not among dataset '{name}' splits {splits}")
        ds_key = dataset_key(config, name)
        resolved.append({"dataset": name, "split": split, "root": dataset_root(config, name),
                         "layout": dataset_layout(config, name),
                         "resolution": config["datasets"][name].get("resolution", "480p"), "dataset_key": ds_key,
                         "flow_key": stage_key("flow", flow, [ds_key]), "videos": video_names(config, name, split)})
    return resolved


def plan_segmenter_training(config: dict[str, Any]) -> TrainingPlan:
    """The train_segmenter job for this config's `training.segmenter`."""
    settings = training_settings(config, "segmenter")
    if not settings["data"]:
        raise InputError("training.segmenter.data", "no training data: name at least one {dataset, split} to train "
                         "the segmenter on (stages.segment.deeplab.weights: trained needs it)")
    data = _data_entries(config, settings["data"], "training.segmenter.data")
    validation = _data_entries(config, settings["validation"], "training.segmenter.validation")
    semantic = {k: v for k, v in settings.items() if k not in EXECUTION_ONLY - {"batch_size"}}
    fingerprint = [[e["dataset_key"], e["flow_key"], e["split"], e["videos"]] for e in data + validation]
    key = stage_key("train_segmenter", semantic, [json_safe(fingerprint)])
    return TrainingPlan("segmenter", key, settings, data, validation)


def json_safe(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def uses_trained_segmenter(segment_settings: dict[str, Any]) -> bool:
    return segment_settings.get("backend") == "deeplab" and segment_settings["deeplab"]["weights"] == TRAINED


def with_trained_segmenter(segment_settings: dict[str, Any], plan: TrainingPlan) -> dict[str, Any]:
    """Segment settings pointing at the trained model, with the crop shape it was trained with."""
    settings = copy.deepcopy(segment_settings)
    settings["deeplab"]["weights"] = plan.model_file
    settings["deeplab"].update({name: plan.settings[name] for name in SEGMENTER_SHAPE})
    return settings


def uses_trained_graph(graph_settings: dict[str, Any]) -> bool:
    """Whether a graph's features are the train_graph stage's model (and it runs its CNN at all)."""
    from stg.graph.settings import GraphSettings

    return (graph_settings.get("backend") == "mobilenet_v2" and graph_settings["mobilenet_v2"]["weights"] == TRAINED
            and GraphSettings.from_dict(graph_settings).needs_features)


def with_trained_graph(graph_settings: dict[str, Any], plan: TrainingPlan) -> dict[str, Any]:
    """Graph settings pointing at the trained features, with the network shape they were trained with."""
    settings = copy.deepcopy(graph_settings)
    settings["mobilenet_v2"]["weights"] = plan.model_file
    settings["mobilenet_v2"].update({name: plan.settings[name] for name in GRAPH_SHAPE})
    return settings


def graph_source_plan(config: dict[str, Any], dataset: str, split: str, variant: str | None):
    """The run plan whose flow, warp, detect and segment stores of a split train the graph: the variant's stage
    settings (None: the config's `stages:`) with cached proposals and untrained features (nothing of the graph
    itself runs)."""
    from stg.config import plan_run

    base = config["variants"][variant].get("stages", {}) if variant is not None else {}
    stages = deep_merge(base, {"graph": {"proposals": "cached", "passes": 1, "mobilenet_v2": {"weights": None}}})
    augmented = {**config, "variants": {**config["variants"],
                                        GRAPH_TRAINING_VARIANT: {"method": "graph", "stages": stages}}}
    return plan_run(augmented, dataset, split, GRAPH_TRAINING_VARIANT, f"{dataset}_{split}__{GRAPH_TRAINING_VARIANT}")


def _graph_entries(config: dict[str, Any], entries: list[dict[str, str]], setting: str, variant: str | None
                   ) -> tuple[list[dict[str, Any]], list[Any]]:
    resolved, sources = [], []
    for entry in _data_entries(config, entries, setting):
        source = graph_source_plan(config, entry["dataset"], entry["split"], variant)
        resolved.append({**entry, "segment_key": source.keys["segment"], "warp_key": source.keys["warp"]})
        sources.append(source)
    return resolved, sources


def plan_graph_training(config: dict[str, Any]) -> TrainingPlan:
    """The train_graph job for this config's `training.graph`: its data are the segment and warp stores of its
    splits, which the same workflow computes (see graph_source_plan)."""
    settings = training_settings(config, "graph")
    if not settings["data"]:
        raise InputError("training.graph.data", "no training data: name at least one {dataset, split} to train the "
                         "graph's features on (stages.graph.mobilenet_v2.weights: trained needs it)")
    variant = settings["variant"]
    if variant is not None and variant not in config["variants"]:
        raise InputError("training.graph.variant", f"unknown variant '{variant}' (config variants: "
                         f"{', '.join(sorted(config['variants']))})")
    data, sources = _graph_entries(config, settings["data"], "training.graph.data", variant)
    validation, more = _graph_entries(config, settings["validation"], "training.graph.validation", variant)
    # the variant's name is not hashed: what it changes, the stores' keys are
    semantic = {k: v for k, v in settings.items() if k not in (EXECUTION_ONLY - {"batch_size"}) | {"variant"}}
    fingerprint = [[e["dataset_key"], e["segment_key"], e["warp_key"], e["split"], e["videos"]]
                   for e in data + validation]
    key = stage_key("train_graph", semantic, [json_safe(fingerprint)])
    return TrainingPlan("graph", key, settings, data, validation, reads=("segment", "warp"),
                        sources=tuple(sources + more))
