# Every helper of the rules: config validation, run plans, stage keys, paths, video lists, the metrics rule's
# inputs and the execution-only CLI flags. The other rule files hold rules only.
import json
import shlex
from functools import cache

from stg.config import dataset_layout as config_dataset_layout
from stg.config import dataset_root as config_dataset_root
from stg.config import (
    node_stage,
    parse_run_name,
    plan_run,
    semantic_settings,
    validate_config,
)
from stg.config import video_names as config_video_names
from stg.models import plan_graph_training, plan_segmenter_training
from stg.stages import stage_uses_gpu  # the rules' resources: gpu=

validate_config(config, "config (config/config.yaml with --config/--configfile overrides)")


wildcard_constraints:
    ds="[A-Za-z0-9-]+",
    key="[0-9a-f]{10}",
    video="[^/]+",
    run="[^/]+",


@cache
def all_plans():
    """Every (dataset, split, variant) plan, computed at parse time so that cluster jobs see them too."""
    plans = {}
    for ds, spec in config["datasets"].items():
        for split in spec.get("splits", ["val"]):
            for variant in config["variants"]:
                plans[(ds, split, variant)] = plan_run(config, ds, split, variant)
    # train_graph's data: the stores of its splits come from run plans of their own ('_' is in no dataset name)
    for plan in list(plans.values()):
        for source in getattr(plan.models.get("graph"), "sources", ()):
            plans[("train_graph", source.dataset, source.split)] = source
    return plans


@cache
def settings_by_key():
    """stage -> key -> (plan, node) for the rules' params and inputs (node 'warp@2': pass 2's warp)."""
    table = {}
    for plan in all_plans().values():
        for node, key in plan.keys.items():
            table.setdefault(node_stage(node), {})[key] = (plan, node)
    return table


def plan_node(stage, key):
    try:
        return settings_by_key()[stage][key]
    except KeyError:
        raise ValueError(f"no configured run has {stage} key {key}: the cache path is stale or hand-made") from None


def plan_for(stage, key):
    return plan_node(stage, key)[0]


def settings_json(stage, key):
    plan, node = plan_node(stage, key)
    return json.dumps(semantic_settings(stage, plan.settings[node]), sort_keys=True)


def is_synthetic(ds):
    return config["datasets"][ds]["layout"] == "synthetic"


def dataset_root(ds):
    return config_dataset_root(config, ds)


def dataset_layout(ds):
    return config_dataset_layout(config, ds)


def dataset_input(wildcards):
    """Synthetic datasets are a rule's output; real ones are just there."""
    return [dataset_root(wildcards.ds)] if is_synthetic(wildcards.ds) else []


@cache
def video_names(ds, split):
    return config_video_names(config, ds, split)


@cache
def video_split(ds, video):
    """The split listing a video (DAVIS 2016 frame lists are per split)."""
    for split in config["datasets"][ds].get("splits", ["val"]):
        if video in video_names(ds, split):
            return split
    raise ValueError(f"video {video} is in no configured split of dataset {ds}")


def run_plan(wildcards):
    ds, split, variant = parse_run_name(config, wildcards.run)
    plan = all_plans()[(ds, split, variant)]
    return plan


def stage_chain(plan):
    """The run's nodes in order (the method's stages, then those of each refinement pass); the last one
    writes its label maps."""
    return plan.nodes


def final_stage(plan):
    return stage_chain(plan)[-1]


def upstream_stores(stage):
    """Input function: {upstream role: its store of this video} for a stage's job (roles: upstream stage names,
    plus 'previous_labels' for a refinement pass's warp)."""

    def stores(wildcards):
        plan, node = plan_node(stage, wildcards.key)
        return {
            **{
                role: plan.store(name, wildcards.video)
                for role, name in plan.upstream[node].items()
                if name != "dataset"
            },
            **plan.model_inputs(node),
            **plan.online_model(node, wildcards.video),
        }

    return stores


def store_arguments(stage):
    """Params function: the job's `--<role> <store>` arguments, shell-quoted (roles differ with the settings, e.g. an
    online graph reads --detect, not --segment), plus an online graph's --segment-settings.
    """

    def arguments(wildcards):
        plan, node = plan_node(stage, wildcards.key)
        parts = [
            f"--{role.replace('_', '-')} {shlex.quote(plan.store(name, wildcards.video))}"
            for role, name in plan.upstream[node].items()
            if name != "dataset"
        ]
        if node in plan.segmenter:
            segment = semantic_settings("segment", plan.segmenter[node])
            parts.append(f"--segment-settings {shlex.quote(json.dumps(segment, sort_keys=True))}")
        return " ".join([*parts, online_argument(stage)(wildcards)])

    return arguments


def online_argument(stage):
    """Params function: `--online-model <folder>` when the job segments with the video's online-learned model."""

    def argument(wildcards):
        plan, node = plan_node(stage, wildcards.key)
        return " ".join(
            f"--online-model {shlex.quote(path)}" for path in plan.online_model(node, wildcards.video).values()
        )

    return argument


def online_plan(key):
    """(plan, segment settings) of the runs whose per-video online learning has this key."""
    for plan in all_plans().values():
        if plan.online == key:
            node = next(n for n in plan.nodes if plan.segments(n))
            return plan, plan.segmenter.get(node, plan.settings.get(node))
    raise ValueError(f"no configured run has online-learning key {key}: the cache path is stale or hand-made")


def online_inputs(wildcards):
    """The online_learning job's inputs: the trained segmenter it starts from, when it is the train stage's."""
    plan, _ = online_plan(wildcards.key)
    return {name: folder for name, folder in plan.model_inputs("segment").items()}


def training_uses_gpu(device, model="segmenter"):
    """A training job holds a GPU when its device is cuda (or auto on a submit host that sees one)."""
    from stg.devices import uses_gpu

    return uses_gpu(device, f"training.{model}.device")


@cache
def segmenter_training():
    return plan_segmenter_training(config)


def training_inputs(wildcards):
    """The train_segmenter job's inputs: every training video's flow store (and generated datasets)."""
    plan = segmenter_training()
    if plan.key != wildcards.key:
        raise ValueError(f"no configured training has segmenter key {wildcards.key}: the cache path is stale")
    synthetic = {e["root"] for e in plan.data + plan.validation if is_synthetic(e["dataset"])}
    return [*sorted(synthetic), *plan.flow_stores()]


@cache
def graph_training():
    return plan_graph_training(config)


def graph_training_inputs(wildcards):
    """The train_graph job's inputs: every training video's segment and warp store (and generated datasets)."""
    plan = graph_training()
    if plan.key != wildcards.key:
        raise ValueError(f"no configured training has graph key {wildcards.key}: the cache path is stale")
    synthetic = {e["root"] for e in plan.data + plan.validation if is_synthetic(e["dataset"])}
    return [*sorted(synthetic), *plan.input_stores()]


def run_stores(wildcards):
    """{stage: its stores of every video of the run} for the metrics rule."""
    plan = run_plan(wildcards)
    videos = video_names(plan.dataset, plan.split)
    return {stage: [plan.store(stage, video) for video in videos] for stage in stage_chain(plan)}


def run_benchmarks(wildcards):
    """The benchmark TSV of every job the run used (run.json's time and memory per stage)."""
    plan = run_plan(wildcards)
    videos = video_names(plan.dataset, plan.split)
    files = [plan.benchmark(stage, video) for stage in stage_chain(plan) for video in videos]
    if plan.online:  # the per-video online learning the run's segmenter went through
        files += [f"cache/{plan.dataset}/benchmarks/online/{plan.online}/{video}.tsv" for video in videos]
    if is_synthetic(plan.dataset):
        files.append(f"cache/{plan.dataset}/benchmarks/synth/{plan.keys['dataset']}/dataset.tsv")
    return files


def run_description(wildcards):
    """The run's plan as JSON for `stg results` (recorded in run.json)."""
    plan = run_plan(wildcards)
    settings = {stage: semantic_settings(stage, plan.settings[stage]) for stage in ["dataset", *stage_chain(plan)]}
    return json.dumps(
        {
            "dataset": plan.dataset,
            "variant": plan.variant,
            "method": plan.method,
            "description": config["variants"][plan.variant].get("description", ""),
            "settings": settings,
            "keys": {s: plan.keys[s] for s in ["dataset", *stage_chain(plan)]}
            | ({"online": plan.online} if plan.online else {}),
            "stores": run_stores(wildcards),
        },
        sort_keys=True,
    )


# Execution-only knobs come from the global config as CLI flags, so they change neither keys nor params:
# each torch stage's device, and the batch size of the globally configured backend (0: the backend's own default).
_DETECT = config["stages"].get("detect", {})
DETECT_DEVICE = _DETECT.get("device", "auto")
DETECT_BATCH = (_DETECT.get(_DETECT.get("backend", "motion")) or {}).get("batch_size", 0)
_SEGMENT = config["stages"].get("segment", {})
SEGMENT_DEVICE = _SEGMENT.get("device", "auto")
SEGMENT_BATCH = (_SEGMENT.get("deeplab") or {}).get("batch_size", 0)
GRAPH_DEVICE = config["stages"].get("graph", {}).get("device", "auto")
TRAINING_DEVICE = config.get("training", {}).get("segmenter", {}).get("device", "auto")
GRAPH_TRAINING_DEVICE = config.get("training", {}).get("graph", {}).get("device", "auto")
