"""The pipeline's stages, one row each; everything that lists stages is derived from this table.

A row says what a stage reads (its upstream roles: their keys go into its key, their stores are its
`--<role>` arguments), its extra command-line arguments, the function that runs one job, and where
its backends are registered (which answers whether a job holds a GPU). From it come `stg <stage>`
(stg.cli), STAGE_UPSTREAM (stg.config), the report's stage order (stg.report) and the rules'
`resources: gpu=` (`stage_uses_gpu`). Adding a stage: a package, one row here, one rule file.

Nothing heavy is imported here (rows name their backends' module; runners import on use), so the CLI
and Snakemake's rule files stay quick to load.
"""

from __future__ import annotations

import argparse
import copy
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stg.errors import InputError
from stg.settings import backend_has_setting, stage_settings

if TYPE_CHECKING:
    from stg.datasets import Video

DATASET = "dataset"  # upstream role: the video's frames (the dataset's key), not a store


def _always(settings: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Option:
    """A command-line argument of one stage beyond those every stage gets."""

    flag: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage (one job per video)."""

    name: str
    help: str
    upstream: tuple[str, ...]  # roles whose keys its key hashes, in order; DATASET or an upstream stage
    run: Callable[[Job], None]
    reads_video: bool = True  # takes --dataset-root/--layout/--split/--video (its frames, first mask)
    backends: str | None = None  # module whose BACKENDS registry the stage's `backend` setting chooses from
    backend_kind: str = ""  # what its backends are, for messages (default: the stage name)
    options: tuple[Option, ...] = ()
    either_roles: tuple[str, ...] = ()  # store roles that the settings may replace (not required on the CLI)
    builds_backend: Callable[[dict[str, Any]], bool] = _always  # given the completed settings
    revision: int = 0  # raised when the same settings give another output: the stage's keys change, caches rerun

    @property
    def store_roles(self) -> list[str]:
        """Upstream roles read from a store (`--<role>` arguments)."""
        return [role for role in self.upstream if role != DATASET]

    def registry(self) -> Mapping[str, Any]:
        return importlib.import_module(self.backends).BACKENDS if self.backends else {}

    def takes_device(self) -> bool:
        """Whether some backend of the stage runs torch on a device (the stage gets --device/--batch-size)."""
        return any(entry.device for entry in self.registry().values())

    def uses_gpu(self, settings: dict[str, Any], device: str) -> bool:
        """Whether a job with these settings and this device spec (auto|cpu|cuda[:N]) holds a GPU."""
        if not self.backends:
            return False
        values = stage_settings(self.name, settings)
        entry = self.registry().get(values["backend"])
        if entry is None or not self.builds_backend(values):
            return False
        return entry.holds_gpu(values, device, f"stages.{self.name}.device")


@dataclass
class Job:
    """One `stg <stage>` run: its parsed arguments and its settings in the three forms a runner needs."""

    stage: Stage
    args: argparse.Namespace
    given: dict[str, Any]  # as given by --settings: what the store records
    settings: dict[str, Any]  # validated and completed from the schema: what the job computes with
    runtime: dict[str, Any]  # settings plus this run's device and batch size: what backends are built from

    @classmethod
    def from_args(cls, stage: Stage, args: argparse.Namespace, given: dict[str, Any]) -> Job:
        settings = stage_settings(stage.name, given, source="--settings")
        runtime = runtime_settings(stage.name, settings, getattr(args, "device", None),
                                   getattr(args, "batch_size", 0))
        return cls(stage, args, given, settings, runtime)

    @property
    def out(self) -> Path:
        return self.args.out

    @property
    def key(self) -> str:
        return self.args.key

    def video(self) -> Video:
        return open_video(self.args)

    def backend(self) -> Any:
        """The backend the settings choose, built for this run's device (fails at start on bad settings/weights)."""
        from stg.registry import build_backend

        return build_backend(self.stage.name, self.stage.backend_kind or self.stage.name, self.stage.registry(),
                             self.runtime)


def with_online_model(segment_settings: dict[str, Any], folder: Path | None) -> dict[str, Any]:
    """Segment settings whose deeplab weights are the video's online-learned model (--online-model), when given."""
    from stg.config import online_learning_steps

    if folder is None:
        if online_learning_steps(segment_settings):
            raise InputError("--online-model", "stages.segment.deeplab.online_learning is on: give the video's "
                             "online-learned model folder (stg online-learn's --out)")
        return segment_settings
    model = Path(folder) / "model.pt"
    if not model.is_file():
        raise InputError(model, "online-learned model is missing (run stg online-learn for this video)")
    settings = copy.deepcopy(segment_settings)
    settings["deeplab"]["weights"] = str(model)
    return settings


def runtime_settings(stage: str, settings: dict[str, Any], device: str | None, batch_size: int = 0
                     ) -> dict[str, Any]:
    """A job's settings with its execution-only knobs (not in any key): the device and the chosen backend's
    batch size, where given (None / 0: the settings' own)."""
    runtime = copy.deepcopy(settings)
    if device:
        runtime["device"] = device
    backend = runtime.get("backend")
    if batch_size and backend is not None and backend_has_setting(stage, backend, "batch_size"):
        runtime[backend] = {**runtime[backend], "batch_size": batch_size}
    return runtime


def open_video(args: argparse.Namespace) -> Video:
    """The video named by --dataset-root/--layout/--split/--video, or an error naming the split file."""
    from stg.datasets import detect_layout, open_dataset

    layout = args.layout or detect_layout(args.dataset_root, args.split)
    dataset = open_dataset(args.dataset_root, layout, args.split)
    if args.video not in dataset.video_names():
        where = getattr(dataset, "split_file", dataset.root)  # DAVIS: the split file; other layouts: the root
        raise InputError(where, f"sequence '{args.video}' is not listed in split '{args.split}'")
    return dataset.video(args.video)


# ---------------------------------------------------------------------------------------------- runners


def run_flow(job: Job) -> None:
    from stg.flow.stage import compute_flow_store

    backend = job.backend()
    compute_flow_store(job.video(), backend, job.out, job.given, key=job.key)


def run_warp(job: Job) -> None:
    from stg.datasets import seed_schedule
    from stg.store import check_store_matches, open_store
    from stg.warp.stage import FirstFrameSource, LabelStoreSource, WarpSettings, compute_warp_store

    warp = WarpSettings.from_dict(job.settings)
    video = job.video()
    seeds, num_objects = seed_schedule(video), video.num_objects  # DAVIS: {0: first mask}, as read_first_mask
    flow = open_store(job.args.flow, "flow")
    check_store_matches(flow, job.args.flow, video)
    if warp.source == "previous_pass":
        if job.args.previous_labels is None:
            raise InputError("--previous-labels", "warp source 'previous_pass' needs the previous pass's label store")
        source = LabelStoreSource(open_store(job.args.previous_labels, "labels")["labels"],
                                  str(job.args.previous_labels))
    else:
        source = FirstFrameSource(rebinarize=warp.rebinarize)
    compute_warp_store(seeds, num_objects, flow, source, job.out, job.given, key=job.key, video=video.name)


def run_propagate(job: Job) -> None:
    from stg.store import open_store
    from stg.warp.stage import compute_propagate_store

    compute_propagate_store(open_store(job.args.warp, "warp"), job.out, job.given, key=job.key)


def run_detect(job: Job) -> None:
    from stg.detect.stage import compute_detect_store
    from stg.store import open_store

    backend = job.backend()  # settings, device and checkpoint fail here, before any input is read
    video = job.video()
    compute_detect_store(video, open_store(job.args.warp, "warp"), backend, job.out, job.given, key=job.key)


def run_segment(job: Job) -> None:
    from stg.segment.backends import make_segment_backend
    from stg.segment.stage import compute_segment_store
    from stg.store import open_store

    # weights and device fail here, before any input is read
    backend = make_segment_backend(with_online_model(job.runtime, job.args.online_model))
    video = job.video()
    detect, warp = open_store(job.args.detect, "detect"), open_store(job.args.warp, "warp")
    compute_segment_store(video, detect, warp, backend, job.out, job.given, key=job.key,
                          detect_path=str(job.args.detect), warp_path=str(job.args.warp))


def graph_needs_features(settings: dict[str, Any]) -> bool:
    """Whether a graph job loads its features CNN (spatial graph with l > 0, or the temporal graph)."""
    from stg.graph.settings import GraphSettings

    return GraphSettings.from_dict(settings).needs_features


def graph_runs_torch(settings: dict[str, Any]) -> bool:
    """Whether a graph job runs a network on its device: the features CNN, or the segmenter of online proposals."""
    return graph_needs_features(settings) or stage_settings("graph", settings)["proposals"] == "online"


def run_graph(job: Job) -> None:
    from stg.graph.stage import compute_graph_store
    from stg.store import open_store

    if job.args.threads:
        import torch

        torch.set_num_threads(job.args.threads)  # OpenMP threads beyond the job's cores spin and collapse throughput
    features = job.backend() if graph_needs_features(job.settings) else None
    segmenter, segment_settings = None, None
    if job.settings["proposals"] == "online":  # the segmenter runs in the frame loop on the detect store's boxes
        from stg.segment.backends import make_segment_backend

        if job.args.detect is None or job.args.segment_settings is None:
            raise InputError("--detect", "graph proposals 'online' segment the detect store's boxes: give --detect "
                             "and --segment-settings (config's stages.segment)")
        segment_settings = stage_settings("segment", json_argument(job.args.segment_settings, "--segment-settings"),
                                          source="--segment-settings")
        segment_settings = with_online_model(segment_settings, job.args.online_model)
        segmenter = make_segment_backend(segment_settings, job.runtime.get("device"))
        proposals = open_store(job.args.detect, "detect")
    else:
        if job.args.segment is None:
            raise InputError("--segment", "graph proposals 'cached' read the segment store: give --segment")
        proposals = open_store(job.args.segment, "segment")
    video = job.video()
    compute_graph_store(video, proposals, open_store(job.args.warp, "warp"), open_store(job.args.flow, "flow"),
                        features, job.given, job.out, key=job.key, segmenter=segmenter,
                        segment_settings=segment_settings)


def json_argument(text: str, option: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(option, f"not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise InputError(option, "expected a JSON object")
    return value


# ---------------------------------------------------------------------------------------------- the table

ONLINE_MODEL = Option("--online-model", {"type": Path, "help": "the video's online-learned segmenter folder "
                                         "(stages.segment.deeplab.online_learning on; stg online-learn's --out)"})

STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("flow", "forward/backward optical flow of one video", (DATASET,), run_flow, backends="stg.flow.backends"),
    Stage("warp", "per-object priors propagated with the cached flow", ("flow",), run_warp,
          options=(Option("--previous-labels", {"type": Path, "help": "label store of a previous pass "
                                                "(source previous_pass)"}),)),
    Stage("detect", "class-agnostic box proposals of every frame", ("warp",), run_detect,
          backends="stg.detect.backends"),
    Stage("segment", "a soft mask for every detection box, seeded by the warped prior", ("detect", "warp"),
          run_segment, backends="stg.segment.backends", options=(ONLINE_MODEL,)),
    Stage("graph", "STG-Net's spatial and temporal graphs: label maps from the proposals", ("segment", "warp", "flow"),
          run_graph, backends="stg.features.backends", backend_kind="features", builds_backend=graph_runs_torch,
          either_roles=("segment",), revision=1,  # 1: join_iou limits greedy candidates; features null = shipped
          options=(Option("--threads", {"type": int, "default": 0,
                                        "help": "torch CPU threads (0: torch's default)"}),
                   Option("--detect", {"type": Path, "help": "proposals online: the detect store of the video"}),
                   Option("--segment-settings", {"help": "proposals online: the segmenter's settings as JSON "
                                                 "(config's stages.segment)"}), ONLINE_MODEL)),
    Stage("propagate", "label maps by arg-max of the warped priors (baseline)", ("warp",), run_propagate,
          reads_video=False),
)}


def stage_uses_gpu(stage: str, settings: dict[str, Any], device: str) -> bool:
    """True when a `stage` job with these (effective) settings and this device spec will hold a GPU.

    For Snakemake's `resources: gpu=`: only a backend that runs torch on its device can, and `auto` counts
    as a GPU when this machine (the submit host) sees one. Backends without torch never import it here.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage '{stage}' (stages: {', '.join(STAGES)})")
    return STAGES[stage].uses_gpu(settings, device)
