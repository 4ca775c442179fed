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
from stg.settings import REPO_ROOT, error_location, first_error, load_schema, stage_settings
from stg.stages import STAGES
from stg.store import SCHEMA_VERSION

DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "config.yaml"

# Settings that change how a stage runs but not what it computes: kept out of the keys.
EXECUTION_ONLY = {"device", "batch_size"}
# Which stores each stage reads (its key hashes their keys; from the stage table, stg.stages), and each
# method's chain of stages; the chain's last stage writes the label maps that become the run's PNGs.
STAGE_UPSTREAM: dict[str, list[str]] = {name: list(stage.upstream) for name, stage in STAGES.items()}
STAGE_REVISION: dict[str, int] = {name: stage.revision for name, stage in STAGES.items()}
METHOD_CHAINS: dict[str, list[str]] = {"propagate": ["flow", "warp", "propagate"]}
METHOD_CHAINS["graph"] = ["flow", "warp", "detect", "segment", "graph"]
# Settings that shape the run plan, not any one store: kept out of the keys (a 2-pass run's first pass
# shares every store with the 1-pass run).
PLAN_ONLY = {"passes"}
# Settings added after stores existed whose value here leaves the stage's output as it was: at that value they stay
# out of the key, so the stores made before them stay valid.
NEUTRAL_VALUES: dict[str, dict[str, Any]] = {"graph": {
    "min_fragment": 0.0, "edge_threshold": 0.0, "sender_nms": 0.0, "spatial_support": "image",
    "temporal_threshold": None, "q_source": "final"}}
# Refinement passes (stages.graph.passes): pass k > 1 re-runs these stages, the warp warping pass k-1's
# label maps one step (source previous_pass). Pass k's nodes are named '<stage>@<k>'; stores keep the
# path cache/<ds>/<stage>/<key>/<video>.zarr (the key differs because the upstream differs).
PASS_STAGES = ("warp", "detect", "segment", "graph")
PREVIOUS_LABELS = "previous_labels"  # upstream role of a pass's warp: the previous pass's label store


def validate_config(config: dict[str, Any], source: str = "config") -> None:
    """Raise InputError naming the offending key for the first schema violation."""
    validator = jsonschema.Draft202012Validator(load_schema())
    error = first_error(validator, config)
    if error is not None:
        raise InputError(f"{source}: key '{error_location(error)}'", error.message)
    if config["default_variant"] not in config["variants"]:
        raise InputError(f"{source}: key 'default_variant'",
                         f"'{config['default_variant']}' is not one of the variants {sorted(config['variants'])}")
    for name in config["variants"]:
        merged = {**config, "stages": effective_stages(config, name)}
        for error in validator.iter_errors(merged):
            raise InputError(f"{source}: variant '{name}', key '{error_location(error)}'", error.message)
        for dataset in config["datasets"]:
            if not config["datasets"][dataset].get("stages"):
                continue
            merged = {**config, "stages": effective_stages(config, name, dataset)}
            for error in validator.iter_errors(merged):
                raise InputError(f"{source}: dataset '{dataset}', variant '{name}', key '{error_location(error)}'",
                                 error.message)


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


def effective_stages(config: dict[str, Any], variant: str, dataset: str | None = None) -> dict[str, Any]:
    """A run's stage settings (before the schema's defaults fill what is left), merged in this order, each
    layer over the one before (a later one wins, key by key):

    1. the dataset layout's defaults (stg.datasets.LAYOUT_DEFAULTS: graph alpha/beta 0.1/0.9 on segtrack_v2 and
       youtube_objects, 0.7/0.3 elsewhere; only with `dataset`);
    2. the config's `stages:`;
    3. the dataset's own `datasets.<dataset>.stages` (only with `dataset`);
    4. the variant's `variants.<variant>.stages`.

    So a variant that sets graph.alpha wins everywhere, and the layout's alpha applies wherever neither the
    config's `stages:`, the dataset nor the variant sets it (config/config.yaml leaves alpha and beta out).
    """
    layers: list[dict[str, Any]] = []
    if dataset is not None:
        layers.append(layout_stage_defaults(dataset_layout(config, dataset)))
    layers.append(config["stages"])
    if dataset is not None:
        layers.append(config["datasets"][dataset].get("stages", {}))
    layers.append(config["variants"][variant].get("stages", {}))
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    return merged


def layout_stage_defaults(layout: str) -> dict[str, Any]:
    """The stage settings a dataset layout brings (stg.datasets.LAYOUT_DEFAULTS; synthetic: davis2017's)."""
    from stg.datasets.layouts import layout_defaults

    return layout_defaults("davis2017" if layout == "synthetic" else layout)


def semantic_settings(stage: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that determine a stage's output: the chosen backend's only (a union's: its members' too),
    no execution or plan knobs."""
    neutral = NEUTRAL_VALUES.get(stage, {})
    settings = {k: v for k, v in settings.items() if k not in EXECUTION_ONLY and k not in PLAN_ONLY
                and not (k in neutral and v == neutral[k])}
    backend = settings.get("backend")
    if backend is not None:
        backend_names = {k for k, v in settings.items() if isinstance(v, dict)}
        kept = {backend}
        if backend == "union" and isinstance(settings.get(backend), dict):
            kept |= set(settings[backend].get("backends", []))
        settings = {k: v for k, v in settings.items() if k not in backend_names or k in kept}
        for name in kept & backend_names:
            settings[name] = {k: v for k, v in settings[name].items() if k not in EXECUTION_ONLY}
            online = settings[name].get("online_learning")
            if isinstance(online, dict) and not online.get("steps"):  # off: no effect, so not in the key
                settings[name] = {k: v for k, v in settings[name].items() if k != "online_learning"}
    return settings


def online_learning_steps(segment_settings: dict[str, Any]) -> int:
    """Steps of the per-video online learning a segment stage's settings ask for (0: off, or not deeplab)."""
    if segment_settings.get("backend", "deeplab") != "deeplab":
        return 0
    return int((segment_settings.get("deeplab") or {}).get("online_learning", {}).get("steps", 0))


def stage_key(stage: str, settings: dict[str, Any], upstream: list[str]) -> str:
    """Short content hash of a stage's semantic settings, its upstream keys and its revision (where raised)."""
    content = {"stage": stage, "schema": SCHEMA_VERSION, "settings": settings, "upstream": upstream}
    if STAGE_REVISION.get(stage):  # revision 0 is left out: the keys made before revisions existed stay valid
        content["revision"] = STAGE_REVISION[stage]
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def dataset_settings(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """What identifies a dataset's files (its key): everything but its stage settings, which reach the keys of the
    stages they set (effective_stages)."""
    return {k: copy.deepcopy(v) for k, v in config["datasets"][dataset].items() if k != "stages"}


def dataset_key(config: dict[str, Any], dataset: str) -> str:
    return stage_key("dataset", dataset_settings(config, dataset), [])


def dataset_root(config: dict[str, Any], dataset: str) -> str:
    """Where a dataset's files are: its `root`, or the synthetic generator's cache folder."""
    spec = config["datasets"][dataset]
    if spec["layout"] == "synthetic":
        return f"cache/{dataset}/dataset/{dataset_key(config, dataset)}"
    return spec["root"]


def dataset_layout(config: dict[str, Any], dataset: str) -> str:
    layout = config["datasets"][dataset]["layout"]
    return "davis2017" if layout == "synthetic" else layout


def video_names(config: dict[str, Any], dataset: str, split: str) -> list[str]:
    """A split's videos (synthetic datasets: the names the generator will write)."""
    spec = config["datasets"][dataset]
    if spec["layout"] == "synthetic":
        from stg.datasets.synthetic import video_names as synthetic_names

        return synthetic_names(spec["synthetic"].get("num_videos", 4))
    from stg.datasets import open_dataset

    return open_dataset(spec["root"], spec["layout"], split, spec.get("resolution", "480p")).video_names()


def node_stage(node: str) -> str:
    """'warp@2' -> 'warp': the stage (rule, cache folder) behind a run plan's node."""
    return node.split("@", 1)[0]


@dataclass(frozen=True)
class RunPlan:
    """Everything the workflow needs to know about one run target.

    Nodes are the stages the run executes: the method's chain, then '<stage>@<k>' for each refinement
    pass k > 1. `upstream[node]` maps each input role (e.g. 'warp', 'previous_labels') to the node it reads.
    """

    run: str
    dataset: str
    split: str
    variant: str
    method: str
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    upstream: dict[str, dict[str, str]] = field(default_factory=dict)
    segmenter: dict[str, dict[str, Any]] = field(default_factory=dict)  # online graph node -> segment settings
    models: dict[str, Any] = field(default_factory=dict)  # model name -> stg.models.TrainingPlan it needs
    online: str = ""  # key of the per-video online-learned segmenters (stages.segment.deeplab.online_learning on)

    def segments(self, node: str) -> bool:
        """Whether a node runs the segmenter (the segment stage, or a graph with online proposals)."""
        return node_stage(node) == "segment" or node in self.segmenter

    def online_model(self, node: str, video: str) -> dict[str, str]:
        """{'online_model': folder} of the video's online-learned segmenter when the node segments with one."""
        if not self.online or not self.segments(node):
            return {}
        return {"online_model": f"cache/{self.dataset}/online/{self.online}/{video}"}

    def model_inputs(self, node: str) -> dict[str, str]:
        """{'<model>_model': folder} of the trained models a node reads (its settings name their files)."""
        stage = node_stage(node)
        reads = {"segmenter": stage == "segment" or node in self.segmenter, "graph": stage == "graph"}
        return {f"{name}_model": plan.folder for name, plan in self.models.items() if reads.get(name)}

    @property
    def nodes(self) -> list[str]:
        """The run's nodes in execution order; the last one writes the run's label maps."""
        return [node for node in self.keys if node != "dataset"]

    def store(self, stage: str, video: str) -> str:
        return f"cache/{self.dataset}/{node_stage(stage)}/{self.keys[stage]}/{video}.zarr"

    def benchmark(self, stage: str, video: str) -> str:
        return f"cache/{self.dataset}/benchmarks/{node_stage(stage)}/{self.keys[stage]}/{video}.tsv"


def plan_passes(method: str, settings: dict[str, dict[str, Any]]) -> int:
    """Refinement passes of a run: stages.graph.passes for methods that end in the graph, else 1."""
    if "graph" not in METHOD_CHAINS[method]:
        return 1
    return int(settings["graph"]["passes"])


def graph_is_online(chain: list[str], stages: dict[str, Any]) -> bool:
    """Whether the run's graph segments its proposals itself (graph.proposals: online): then no segment stage runs."""
    return "graph" in chain and stage_settings("graph", stages.get("graph", {}))["proposals"] == "online"


def stage_roles(stage: str, chain: list[str], online: bool) -> dict[str, str]:
    """A chain stage's upstream roles; an online graph reads the detect store instead of the segment store."""
    roles = {name: name for name in STAGE_UPSTREAM[stage]}
    if stage == "graph" and online:
        roles = {("detect" if role == "segment" else role): ("detect" if name == "segment" else name)
                 for role, name in roles.items()}
    return roles


def plan_run(config: dict[str, Any], dataset: str, split: str, variant: str, run: str = "") -> RunPlan:
    """The run's nodes, their settings (completed with the schema's defaults, so an omitted setting and its
    default give one key) and their keys."""
    from stg.models import (
        plan_graph_training,
        plan_segmenter_training,
        uses_trained_graph,
        uses_trained_segmenter,
        with_trained_graph,
        with_trained_segmenter,
    )

    stages = effective_stages(config, variant, dataset)
    method = config["variants"][variant]["method"]
    settings: dict[str, dict[str, Any]] = {"dataset": dataset_settings(config, dataset)}
    keys: dict[str, str] = {"dataset": stage_key("dataset", settings["dataset"], [])}
    upstream: dict[str, dict[str, str]] = {}
    segmenter: dict[str, dict[str, Any]] = {}
    models: dict[str, Any] = {}

    chain = list(METHOD_CHAINS[method])
    online = graph_is_online(chain, stages)
    if online:
        chain.remove("segment")
    segment = stage_settings("segment", stages.get("segment", {}))
    if ("segment" in chain or online) and uses_trained_segmenter(segment):
        models["segmenter"] = plan_segmenter_training(config)
        segment = with_trained_segmenter(segment, models["segmenter"])

    online_key = ""
    if ("segment" in chain or online) and online_learning_steps(segment):
        online_key = stage_key("online", semantic_settings("segment", segment), [keys["dataset"]])

    def add(node: str, node_settings: dict[str, Any], roles: dict[str, str]) -> None:
        settings[node], upstream[node] = node_settings, roles
        stage = node_stage(node)
        semantic = semantic_settings(stage, node_settings)
        if stage == "graph" and online:  # the graph segments: the segmenter's settings shape its output
            segmenter[node] = segment
            semantic = {**semantic, "segmenter": semantic_settings("segment", segment)}
        keys[node] = stage_key(stage, semantic, [keys[n] for n in roles.values()])

    for stage in chain:
        stage_values = segment if stage == "segment" else stage_settings(stage, stages.get(stage, {}))
        if stage == "graph" and uses_trained_graph(stage_values):  # the train_graph stage's features, by key
            models["graph"] = plan_graph_training(config)
            stage_values = with_trained_graph(stage_values, models["graph"])
        add(stage, stage_values, stage_roles(stage, chain, online))
    previous = chain[-1]
    for k in range(2, plan_passes(method, settings) + 1):
        for stage in (s for s in chain if s in PASS_STAGES):
            roles = {role: f"{name}@{k}" if name in PASS_STAGES and name in chain else name
                     for role, name in stage_roles(stage, chain, online).items()}
            node_settings = settings[stage]
            if stage == "warp":
                node_settings = {**node_settings, "source": "previous_pass"}
                roles[PREVIOUS_LABELS] = previous
            add(f"{stage}@{k}", node_settings, roles)
        previous = f"{chain[-1]}@{k}"
    return RunPlan(run or f"{dataset}_{split}__{variant}", dataset, split, variant, method, settings, keys, upstream,
                   segmenter, models, online_key)


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
