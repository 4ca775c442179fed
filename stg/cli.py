"""`stg <stage>`: every pipeline stage as a command, so it runs by hand on one video as well as from Snakemake."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from stg.errors import InputError, StoreError

log = logging.getLogger("stg")


def _settings(text: str | None) -> dict[str, Any]:
    """--settings takes inline JSON or @path to a JSON/YAML file."""
    if not text:
        return {}
    if text.startswith("@"):
        import yaml

        path = Path(text[1:])
        if not path.is_file():
            raise InputError(path, "settings file is missing")
        return yaml.safe_load(path.read_text()) or {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError("--settings", f"not valid JSON ({error})") from None


def _add_dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset-root", required=True, type=Path, help="DAVIS-layout dataset folder")
    parser.add_argument("--layout", default=None, choices=["davis2017", "davis2016"],
                        help="dataset layout (default: detected from ImageSets)")
    parser.add_argument("--split", required=True, help="split name, e.g. val")
    parser.add_argument("--video", required=True, help="sequence name")


def _open_video(args: argparse.Namespace):
    from stg.datasets import detect_layout, open_dataset

    layout = args.layout or detect_layout(args.dataset_root, args.split)
    dataset = open_dataset(args.dataset_root, layout, args.split)
    if args.video not in dataset.video_names():
        raise InputError(dataset.split_file, f"sequence '{args.video}' is not listed in split '{args.split}'")
    return dataset.video(args.video)


def cmd_synth(args: argparse.Namespace) -> None:
    from stg.datasets.synthetic import generate

    names = generate(args.root, seed=args.seed, num_videos=args.num_videos, frames=(args.min_frames, args.max_frames),
                     height=args.height, width=args.width, split=args.split)
    log.info("synthetic dataset with %d videos written to %s", len(names), args.root)


def cmd_flow(args: argparse.Namespace) -> None:
    from stg.flow.backends import make_flow_backend
    from stg.flow.stage import compute_flow_store

    settings = _settings(args.settings)
    backend_name = settings.get("backend", "dis")
    runtime = {**settings, "device": args.device}
    if args.batch_size:
        runtime[backend_name] = {**settings.get(backend_name, {}), "batch_size": args.batch_size}
    backend = make_flow_backend(runtime)
    video = _open_video(args)
    batch = runtime.get(backend_name, {}).get("batch_size", 4)
    compute_flow_store(video, backend, args.out, settings, key=args.key, batch_size=batch)


def cmd_warp(args: argparse.Namespace) -> None:
    from stg.datasets import read_first_mask
    from stg.store import open_store
    from stg.warp.stage import FirstFrameSource, LabelStoreSource, compute_warp_store

    settings = _settings(args.settings)
    video = _open_video(args)
    first_labels, num_objects = read_first_mask(video)
    flow = open_store(args.flow, "flow")
    if list(flow.attrs["frame_names"]) != video.frame_names:
        raise StoreError(f"{args.flow}: frame names differ from the dataset's frames of '{video.name}'")
    if settings.get("source", "first_frame") == "previous_pass":
        if args.previous_labels is None:
            raise InputError("--previous-labels", "warp source 'previous_pass' needs the previous pass's label store")
        source = LabelStoreSource(open_store(args.previous_labels, "labels")["labels"], str(args.previous_labels))
    else:
        source = FirstFrameSource(rebinarize=settings.get("rebinarize", True))
    compute_warp_store(first_labels, num_objects, flow, source, args.out, settings, key=args.key, video=video.name)


def cmd_propagate(args: argparse.Namespace) -> None:
    from stg.store import open_store
    from stg.warp.stage import compute_propagate_store

    compute_propagate_store(open_store(args.warp, "warp"), args.out, _settings(args.settings), key=args.key)


def cmd_detect(args: argparse.Namespace) -> None:
    from stg.detect.backends import make_detect_backend
    from stg.detect.stage import compute_detect_store
    from stg.store import open_store

    settings = _settings(args.settings)
    backend_name = settings.get("backend", "motion")
    runtime = {**settings, "device": args.device}
    if args.batch_size:
        runtime[backend_name] = {**settings.get(backend_name, {}), "batch_size": args.batch_size}
    backend = make_detect_backend(runtime)  # settings, device and checkpoint fail here, before any input is read
    video = _open_video(args)
    compute_detect_store(video, open_store(args.warp, "warp"), backend, args.out, settings, key=args.key)


def cmd_segment(args: argparse.Namespace) -> None:
    from stg.segment.backends import make_segment_backend
    from stg.segment.stage import compute_segment_store
    from stg.store import open_store

    settings = _settings(args.settings)
    backend_name = settings.get("backend", "grabcut")
    runtime = {**settings, "device": args.device}
    if args.batch_size and backend_name == "deeplab":
        runtime["deeplab"] = {**settings.get("deeplab", {}), "batch_size": args.batch_size}
    backend = make_segment_backend(runtime)  # weights and device fail here, before any input is read
    video = _open_video(args)
    detect, warp = open_store(args.detect, "detect"), open_store(args.warp, "warp")
    compute_segment_store(video, detect, warp, backend, args.out, settings, key=args.key,
                          detect_path=str(args.detect), warp_path=str(args.warp))


def cmd_graph(args: argparse.Namespace) -> None:
    from stg.features.backends import make_features_backend
    from stg.graph.settings import GraphSettings
    from stg.graph.stage import compute_graph_store
    from stg.store import open_store

    settings = _settings(args.settings)
    graph = GraphSettings.from_dict(settings)  # bad settings fail here, before any model or input is loaded
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # OpenMP threads beyond the job's cores spin and collapse throughput
    needs_features = graph.temporal or (graph.spatial and graph.spatial_iterations > 0)
    features = make_features_backend(settings, args.device) if needs_features else None
    video = _open_video(args)
    compute_graph_store(video, open_store(args.segment, "segment"), open_store(args.warp, "warp"),
                        open_store(args.flow, "flow"), features, settings, args.out, key=args.key)


def cmd_proposals_report(args: argparse.Namespace) -> None:
    from stg.proposals_report import stored_reports, video_report, write_report

    if args.dataset_root is None:
        reports, without = stored_reports(args.segment)
    else:
        from stg.store import open_store

        reports, without = [], []
        for path in args.segment:
            args.video = open_store(path, "segment").attrs["video"]
            report = video_report(path, _open_video(args))
            if report["object_frames"]:
                reports.append(report)
            else:
                without.append(args.video)
    summary = write_report(reports, args.out, without)
    overall = summary["overall"]
    print(json.dumps({"videos": {name: {k: v[k] for k in ("recall", "oracle_j", "mean_proposals_per_frame")}
                                 for name, v in summary["videos"].items()}, "overall": overall}, indent=2))


def cmd_metrics(args: argparse.Namespace) -> None:
    from stg.metrics.evaluate import run_metrics

    run_metrics(args.davis_root, args.results, args.set, args.out, processes=args.processes)


def cmd_results(args: argparse.Namespace) -> None:
    from stg.results import write_run

    write_run(dataset_root=args.dataset_root, split=args.split, label_stores=args.labels, out=args.out,
              plan=_settings(args.plan),
              benchmarks=args.benchmarks or [], processes=args.processes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stg", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="generate the synthetic DAVIS-2017-layout dataset")
    synth.add_argument("--root", required=True, type=Path)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--num-videos", type=int, default=4)
    synth.add_argument("--min-frames", type=int, default=30)
    synth.add_argument("--max-frames", type=int, default=60)
    synth.add_argument("--height", type=int, default=480)
    synth.add_argument("--width", type=int, default=854)
    synth.add_argument("--split", default="val")
    synth.set_defaults(func=cmd_synth)

    for name, func, help_text in (("flow", cmd_flow, "forward/backward optical flow of one video"),
                                  ("warp", cmd_warp, "per-object priors propagated with the cached flow")):
        stage = commands.add_parser(name, help=help_text)
        _add_dataset_args(stage)
        stage.add_argument("--settings", help="stage settings as JSON or @file (config's stages.<stage>)")
        stage.add_argument("--key", default="", help="stage key recorded in the store")
        stage.add_argument("--out", required=True, type=Path, help="output Zarr store")
        stage.set_defaults(func=func)
        if name == "flow":
            stage.add_argument("--device", default="auto", help="torch backends: auto | cpu | cuda[:N]")
            stage.add_argument("--batch-size", type=int, default=0, help="frame pairs per batch (0: setting)")
        if name == "warp":
            stage.add_argument("--flow", required=True, type=Path, help="flow store of the video")
            stage.add_argument("--previous-labels", type=Path, help="label store of a previous pass")

    propagate = commands.add_parser("propagate", help="label maps by arg-max of the warped priors (baseline)")
    propagate.add_argument("--warp", required=True, type=Path)
    propagate.add_argument("--settings")
    propagate.add_argument("--key", default="")
    propagate.add_argument("--out", required=True, type=Path)
    propagate.set_defaults(func=cmd_propagate)

    detect = commands.add_parser("detect", help="class-agnostic box proposals of every frame")
    _add_dataset_args(detect)
    detect.add_argument("--warp", required=True, type=Path, help="warp store of the video")
    detect.add_argument("--settings", help="stage settings as JSON or @file (config's stages.detect)")
    detect.add_argument("--device", default="auto", help="torch backends: auto | cpu | cuda[:N]")
    detect.add_argument("--batch-size", type=int, default=0, help="frames per batch (0: setting)")
    detect.add_argument("--key", default="", help="stage key recorded in the store")
    detect.add_argument("--out", required=True, type=Path, help="output Zarr store")
    detect.set_defaults(func=cmd_detect)

    segment = commands.add_parser("segment", help="a soft mask for every detection box, seeded by the warped prior")
    _add_dataset_args(segment)
    segment.add_argument("--detect", required=True, type=Path, help="detect store of the video")
    segment.add_argument("--warp", required=True, type=Path, help="warp store of the video")
    segment.add_argument("--settings", help="stage settings as JSON or @file (config's stages.segment)")
    segment.add_argument("--device", default="auto", help="torch backends: auto | cpu | cuda[:N]")
    segment.add_argument("--batch-size", type=int, default=0, help="deeplab: proposals per batch (0: setting)")
    segment.add_argument("--key", default="", help="stage key recorded in the store")
    segment.add_argument("--out", required=True, type=Path, help="output Zarr store")
    segment.set_defaults(func=cmd_segment)

    graph = commands.add_parser("graph", help="STG-Net's spatial and temporal graphs: label maps from the proposals")
    _add_dataset_args(graph)
    graph.add_argument("--segment", required=True, type=Path, help="segment store of the video (proposals)")
    graph.add_argument("--warp", required=True, type=Path, help="warp store of the video")
    graph.add_argument("--flow", required=True, type=Path, help="flow store of the video")
    graph.add_argument("--settings", help="stage settings as JSON or @file (config's stages.graph)")
    graph.add_argument("--device", default="auto", help="features backend: auto | cpu | cuda[:N]")
    graph.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    graph.add_argument("--key", default="", help="stage key recorded in the store")
    graph.add_argument("--out", required=True, type=Path, help="output Zarr store (a labels store)")
    graph.set_defaults(func=cmd_graph)

    report = commands.add_parser("proposals-report", help="box recall and oracle J of segment stores")
    report.add_argument("--segment", required=True, nargs="+", type=Path, help="segment stores")
    report.add_argument("--out", required=True, type=Path, help="JSON file to write")
    report.add_argument("--dataset-root", type=Path, help="recompute from this dataset's ground truth "
                        "(default: the reports stored by the segment stage)")
    report.add_argument("--layout", default=None, choices=["davis2017", "davis2016"])
    report.add_argument("--split", default="val", help="split listing the videos (with --dataset-root)")
    report.set_defaults(func=cmd_proposals_report)

    metrics = commands.add_parser("metrics", help="DAVIS J/F/G, identical to the official toolkit")
    metrics.add_argument("--davis-root", required=True, type=Path, help="DAVIS 2017 or 2016 layout root")
    metrics.add_argument("--results", required=True, type=Path, help="folder of <seq>/<frame>.png results")
    metrics.add_argument("--set", required=True, help="split, e.g. val")
    metrics.add_argument("--out", required=True, type=Path, help="folder for the CSVs and metrics.json")
    metrics.add_argument("--processes", type=int, default=2)
    metrics.set_defaults(func=cmd_metrics)

    results = commands.add_parser("results", help="write a run folder: palette PNGs, metrics, run.json")
    results.add_argument("--dataset-root", required=True, type=Path)
    results.add_argument("--split", required=True)
    results.add_argument("--labels", required=True, nargs="+", type=Path, help="label stores, one per video")
    results.add_argument("--plan", help="run description (settings, keys, variant, stores) as JSON or @file")
    results.add_argument("--benchmarks", nargs="*", type=Path, help="Snakemake benchmark TSVs of upstream jobs")
    results.add_argument("--processes", type=int, default=2)
    results.add_argument("--out", required=True, type=Path)
    results.set_defaults(func=cmd_results)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        args.func(args)
    except (InputError, StoreError) as error:
        print(f"stg {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
