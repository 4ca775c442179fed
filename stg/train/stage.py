"""The training stages: data in, `cache/models/<model>/<key>/` out (weights, training record, curve).

train_segmenter learns from dataset splits and their flow stores, train_graph from the cached segment and warp
stores of its splits; both share the loop (stg.train.loop), the record's fields and the writer.

The folder appears only when training has finished (atomic rename); the resumable checkpoint lives in a
separate work folder, so a killed job (which Snakemake cleans up after) resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from stg import __version__
from stg.atomic import atomic_directory
from stg.errors import InputError
from stg.train.data import load_training_split
from stg.train.loop import Recipe, TrainResult, train
from stg.train.segmenter import SegmenterSamples, SegmenterTask

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
RECORD_FILE = "training.json"
CURVE_FILE = "curve.png"
RECIPE_KEYS = {f.name for f in fields(Recipe)}
SAMPLE_KEYS = {f.name for f in fields(SegmenterSamples)}


def recipe_from_settings(settings: dict[str, Any]) -> Recipe:
    return Recipe(**{k: v for k, v in settings.items() if k in RECIPE_KEYS})


def samples_from_settings(settings: dict[str, Any]) -> SegmenterSamples:
    return SegmenterSamples(**{k: v for k, v in settings.items() if k in SAMPLE_KEYS})


def _load(specs: list[dict[str, Any]]) -> list[list]:
    """The videos of each data entry ({root, layout, split, flow: {video: store}})."""
    return [load_training_split(Path(spec["root"]), spec["layout"], spec["split"],
                                {name: Path(p) for name, p in spec["flow"].items()} if "flow" in spec else None,
                                spec.get("resolution", "480p"))
            for spec in specs]


STORE_ROLES = ("flow", "segment", "warp")  # per-video store maps of a data entry: not in the record


def _describe(specs: list[dict[str, Any]], loaded: list[list]) -> list[dict[str, Any]]:
    """What the record says of the data: where it came from and each video's frame count."""
    return [{k: v for k, v in spec.items() if k not in STORE_ROLES} | {"videos": {v.name: _frames(v) for v in videos}}
            for spec, videos in zip(specs, loaded, strict=True)]


def _frames(video) -> int:
    return len(video.frames) if hasattr(video, "frames") else len(video.truth_boxes)


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version(), "stg-vos": __version__}
    for name in ("torch", "segmentation-models-pytorch", "numpy", "opencv-python-headless"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _source_commit() -> str | None:
    """The git commit of the code that trained (with '-dirty' for uncommitted edits), when run from a checkout."""
    import subprocess

    try:
        result = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).resolve().parent,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def plot_curve(history: list[dict[str, float]], path: Path, loss_label: str = "loss (BCE + Dice)",
               quality: tuple[str, str] = ("val_crop_j", "held-out crop J")) -> None:
    """Loss (left axis) and a held-out quality figure (right axis; history key and label) against steps."""
    from matplotlib.figure import Figure

    name, label = quality
    figure = Figure(figsize=(6, 3.2), dpi=100)
    axis = figure.add_subplot()
    steps = [h["step"] for h in history]
    axis.plot(steps, [h["loss"] for h in history], "o-", color="tab:blue", label="training loss")
    axis.set_xlabel("step")
    axis.set_ylabel(loss_label, color="tab:blue")
    if any(name in h for h in history):
        other = axis.twinx()
        other.plot(steps, [h.get(name, float("nan")) for h in history], "s-", color="tab:red")
        other.set_ylabel(label, color="tab:red")
    figure.tight_layout()
    figure.savefig(path)


def _state_dict_fp16(model) -> dict:
    """Weights in half precision (half the size); floating buffers too, integer counters unchanged."""
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}


def write_model(result: TrainResult, out: Path, record: dict[str, Any], **curve: Any) -> None:
    import torch

    with atomic_directory(out) as folder:
        torch.save(_state_dict_fp16(result.model), folder / MODEL_FILE)
        (folder / RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        if result.history:
            plot_curve(result.history, folder / CURVE_FILE, **curve)


def _run_record(model: str, key: str, settings: dict[str, Any], recipe: Recipe, result: TrainResult
                ) -> dict[str, Any]:
    """The fields every training record has: what was trained how, its history, time, device and versions."""
    return {"model": model, "key": key, "settings": settings, "recipe": asdict(recipe), "history": result.history,
            "steps": result.steps, "wall_seconds": round(result.wall_seconds, 1),
            "cpu_seconds": round(result.cpu_seconds, 1), "resumed_from": result.resumed_from,
            "device": result.device, "packages": _package_versions(), "commit": _source_commit()}


def _stopped(result: TrainResult, recipe: Recipe, work_dir: Path) -> bool:
    if result.steps < recipe.steps:
        log.info("stopped at step %d of %d; run again to resume from %s", result.steps, recipe.steps, work_dir)
        return True
    return False


def _train_and_write(task, recipe: Recipe, work_dir: Path, out: Path, key: str, settings: dict[str, Any],
                     torch_device, stop_after: int | None, details, **curve: Any) -> TrainResult:
    """The skeleton every training stage shares: run (or resume) the loop; when it finished, write the model with
    the common record plus `details(result)`, and drop the work folder."""
    result = train(task, recipe, work_dir, device=torch_device, stop_after=stop_after)
    if _stopped(result, recipe, work_dir):
        return result
    write_model(result, Path(out), _run_record(task.name, key, settings, recipe, result) | details(result), **curve)
    shutil.rmtree(work_dir, ignore_errors=True)
    log.info("%s %s written to %s (%.0f s)", task.name, key, out, result.wall_seconds)
    return result


def _crops_per_second(result: TrainResult, recipe: Recipe) -> float:
    return round(result.steps * recipe.batch_size / max(result.wall_seconds, 1e-9), 2)


def train_segmenter(settings: dict[str, Any], data: list[dict[str, Any]], out: Path, work_dir: Path, key: str = "",
                    validation: list[dict[str, Any]] | None = None, device: str = "auto",
                    stop_after: int | None = None) -> TrainResult:
    """Train the 4-channel segmenter on `data` (dataset splits + their flow stores) and write `out`.

    Omitted settings take the schema's defaults (config `training.segmenter`).
    """
    from stg.devices import resolve_device
    from stg.models import training_settings

    settings = training_settings({"training": {"segmenter": settings}}, "segmenter")

    torch_device = resolve_device(device, "training.segmenter.device")
    recipe, spec = recipe_from_settings(settings), samples_from_settings(settings)
    loaded = _load(data)
    held_out = _load(validation) if validation else []
    videos = [video for group in loaded for video in group]
    task = SegmenterTask(videos, spec, encoder=settings["encoder"], encoder_init=settings["encoder_init"],
                         dice_weight=settings["dice_weight"],
                         validation=[video for group in held_out for video in group])
    log.info("train segmenter %s: %d videos, %d samples, %d steps of %d crops on %s", key, len(videos),
             len(task.index), recipe.steps, recipe.batch_size, torch_device)
    return _train_and_write(task, recipe, work_dir, out, key, settings, torch_device, stop_after, lambda result: {
        "samples": asdict(spec), "data": _describe(data, loaded), "validation": _describe(validation or [], held_out),
        "encoder_init": task.encoder_identity, "crops_per_second": _crops_per_second(result, recipe)})


def _load_graph_data(specs: list[dict[str, Any]]) -> list[list]:
    """The videos of each graph data entry ({root, layout, split, segment: {video: store}, warp: {video: store}})."""
    from stg.train.graph import load_graph_training_split

    loaded = []
    for spec in specs:
        for role in ("segment", "warp"):
            if not isinstance(spec.get(role), dict):
                raise InputError("--data", f"graph training data of split '{spec.get('split')}' needs '{role}': "
                                 f"{{video: {role} store}} (the cached stores of the training split)")
        loaded.append(load_graph_training_split(Path(spec["root"]), spec["layout"], spec["split"], spec["segment"],
                                                spec["warp"], spec.get("resolution", "480p")))
    return loaded


def train_graph(settings: dict[str, Any], data: list[dict[str, Any]], out: Path, work_dir: Path, key: str = "",
                validation: list[dict[str, Any]] | None = None, device: str = "auto",
                stop_after: int | None = None) -> TrainResult:
    """Train the graph's feature network with Eq. 9 on the cached proposals of `data` and write `out`.

    Omitted settings take the schema's defaults (config `training.graph`); model.pt is a MobileNetV2 `features`
    state dict that stages.graph.mobilenet_v2.weights loads.
    """
    from stg.devices import resolve_device
    from stg.models import training_settings
    from stg.train.graph import GraphSpec, GraphTask

    settings = training_settings({"training": {"graph": settings}}, "graph")
    torch_device = resolve_device(device, "training.graph.device")
    recipe, spec = recipe_from_settings(settings), GraphSpec.from_settings(settings)
    loaded = _load_graph_data(data)
    held_out = _load_graph_data(validation) if validation else []
    videos = [video for group in loaded for video in group]
    task = GraphTask(videos, spec, init=settings["init"], validation=[video for group in held_out for video in group])
    log.info("train graph %s: %d videos, %d samples, %d steps of %d samples on %s", key, len(videos),
             len(task.index), recipe.steps, recipe.batch_size, torch_device)
    return _train_and_write(task, recipe, work_dir, out, key, settings, torch_device, stop_after, lambda result: {
        "graph": asdict(spec), "data": _describe(data, loaded), "validation": _describe(validation or [], held_out),
        "training_samples": len(task.index), "proposals": {v.name: len(v.boxes) for v in videos},
        "init": task.init_identity, "loss": "Eq. 9: gamma * sum_v |S(M_v|b,M) - S(M_v|p,Q)| + BCE (stg/graph/loss.py)",
        "loads_into": "stages.graph.mobilenet_v2.weights (torchvision mobilenet_v2 features.*)",
        "samples_per_second": round(result.steps * recipe.batch_size / max(result.wall_seconds, 1e-9), 3),
        "seconds_per_step": round(result.wall_seconds / max(result.steps, 1), 3),
    }, loss_label="loss (Eq. 9)", quality=("val_j", "held-out final J"))


def learn_online(video, segment_settings: dict[str, Any], out: Path, work_dir: Path, key: str = "",
                 device: str = "auto", stop_after: int | None = None) -> TrainResult:
    """Fine-tune the video's segmenter on its first annotated frame (stg.train.online) and write `out`.

    `segment_settings`: the completed `stages.segment` settings whose deeplab network is the start and whose
    `deeplab.online_learning` block is the recipe; model.pt then replaces `deeplab.weights` for this video only.
    """
    import numpy as np

    from stg.datasets import read_frame, seed_schedule
    from stg.devices import resolve_device
    from stg.segment.deeplab import DeepLabSegmenter
    from stg.train.online import DreamSpec, OnlineTask, dream_video

    deeplab = segment_settings["deeplab"]
    online = deeplab["online_learning"]
    if segment_settings["backend"] != "deeplab":
        raise InputError("stages.segment.deeplab.online_learning", "online learning fine-tunes the deeplab "
                         f"segmenter, not '{segment_settings['backend']}'")
    torch_device = resolve_device(device, "stages.segment.device")
    start = DeepLabSegmenter(encoder=deeplab["encoder"], weights=deeplab["weights"], device="cpu")
    # Every seed frame (DAVIS: frame 0 alone, as always) is dreamed into its own clip, so an object that starts
    # late is learned from its own first annotated frame; one generator runs through the clips in frame order.
    seeds, num_objects = seed_schedule(video), video.num_objects
    dream = DreamSpec(**{k: v for k, v in online.items() if k in {f.name for f in fields(DreamSpec)}})
    rng = np.random.default_rng(online["seed"])
    clips = [dream_video(video.name if frame == 0 else f"{video.name}@{video.frame_names[frame]}",
                         read_frame(video.frame_paths[frame]), labels, num_objects, dream, rng)
             for frame, labels in sorted(seeds.items())]
    late_seeds = {"seed_frames": [video.frame_names[f] for f in sorted(seeds)]} if set(seeds) != {0} else {}
    spec = SegmenterSamples(input_size=deeplab["input_size"], margin=deeplab["margin"])
    task = OnlineTask(clips[0] if len(clips) == 1 else clips, spec, start.model.state_dict(), deeplab["encoder"],
                      train_encoder=online.get("train_encoder", True))
    recipe = Recipe(steps=online["steps"], batch_size=online["batch_size"], lr=online["lr"], schedule="constant",
                    seed=online["seed"], checkpoint_every=max(online["steps"], 1))
    log.info("online learning %s: %d dreamed frames, %d steps of %d crops on %s", video.name, dream.frames,
             recipe.steps, recipe.batch_size, torch_device)
    return _train_and_write(task, recipe, work_dir, out, key, segment_settings, torch_device, stop_after,
                            lambda result: {"video": video.name, "first_frame": video.frame_names[min(seeds)],
                                            **late_seeds,
                                            "objects": num_objects, "dream": asdict(dream), "samples": asdict(spec),
                                            "start": start.weights,
                                            "crops_per_second": _crops_per_second(result, recipe)})
