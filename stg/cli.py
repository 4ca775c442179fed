"""`stg <stage>`: every pipeline stage as a command, so it runs by hand on one video as well as from Snakemake.

The stage commands are derived from the stage table (stg.stages); synth, proposals-report, metrics,
results and weights are not pipeline stages and are written out here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stg.errors import InputError, StoreError

if TYPE_CHECKING:
    from stg.stages import Stage

log = logging.getLogger("stg")


def _settings(text: str | None, option: str = "--settings") -> dict[str, Any]:
    """--settings (and --plan, --data, ...) take inline JSON or @path to a JSON/YAML file."""
    if not text:
        return {}
    if text.startswith("@"):
        return _read_yaml(Path(text[1:]), "settings file") or {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(option, f"not valid JSON ({error})") from None


def _read_yaml(path: Path, what: str) -> Any:
    """A YAML (or JSON) file's value; a missing, unreadable or malformed file is a one-line InputError naming it."""
    import yaml

    if not path.is_file():
        raise InputError(path, f"{what} is missing")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise InputError(path, f"{what} is not UTF-8 text ({error})") from None
    except OSError as error:
        raise InputError(path, f"{what} cannot be read ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InputError(path, f"{what} is not valid YAML ({problem}{at})") from None


# stg.datasets.LAYOUTS, spelt out so that the CLI loads without the dataset readers (a test keeps them equal)
LAYOUT_CHOICES = ("davis2017", "davis2016", "youtube_vos", "segtrack_v2", "youtube_objects", "folder")


def _add_dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset-root", required=True, type=Path, help="dataset folder (any layout of --layout)")
    parser.add_argument("--layout", default=None, choices=LAYOUT_CHOICES,
                        help="dataset layout (default: DAVIS 2017 or 2016, detected from ImageSets)")
    parser.add_argument("--split", required=True, help="split name, e.g. val")
    parser.add_argument("--video", required=True, help="sequence name")


def cmd_synth(args: argparse.Namespace) -> None:
    from stg.datasets.synthetic import generate

    names = generate(args.root, seed=args.seed, num_videos=args.num_videos, frames=(args.min_frames, args.max_frames),
                     height=args.height, width=args.width, split=args.split)
    log.info("synthetic dataset with %d videos written to %s", len(names), args.root)


def cmd_stage(args: argparse.Namespace) -> None:
    """Any pipeline stage: --settings validated and completed against the config schema, then the stage's runner."""
    from stg.stages import STAGES, Job

    stage = STAGES[args.command]
    stage.run(Job.from_args(stage, args, _settings(args.settings)))


def cmd_proposals_report(args: argparse.Namespace) -> None:
    from stg.proposals_report import stored_reports, video_report, write_proposal_summary
    from stg.stages import open_video

    if args.dataset_root is None:
        reports, without = stored_reports(args.segment)
    else:
        from stg.store import open_store

        reports, without = [], []
        for path in args.segment:
            args.video = open_store(path, "segment").attrs["video"]
            report = video_report(path, open_video(args))
            if report["object_frames"]:
                reports.append(report)
            else:
                without.append(args.video)
    summary = write_proposal_summary(reports, args.out, without)
    overall = summary["overall"]
    print(json.dumps({"videos": {name: {k: v[k] for k in ("recall", "oracle_j", "mean_proposals_per_frame")}
                                 for name, v in summary["videos"].items()}, "overall": overall}, indent=2))


_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _single_threaded_numpy() -> None:
    """Keep numpy's BLAS from starting its thread pool (the metrics use no BLAS): with this process on
    one thread the metrics workers are forked, the cheapest start (stg.metrics.evaluation)."""
    import os

    if "numpy" not in sys.modules:
        for name in _BLAS_THREADS:
            os.environ.setdefault(name, "1")


def cmd_metrics(args: argparse.Namespace) -> None:
    import shutil

    _single_threaded_numpy()
    from stg.metrics.evaluate import run_metrics
    from stg.metrics.evaluation import keep_freed_memory

    keep_freed_memory()  # this process only scores; frame buffers freed are reused (inline, processes=1)

    created = not args.out.exists()
    try:
        run_metrics(args.davis_root, args.results, args.set, args.out, processes=args.processes, layout=args.layout)
    except BaseException:
        if created and args.out.is_dir():  # the folder this run made, with at most part of its files
            shutil.rmtree(args.out, ignore_errors=True)
        raise


def _layered_config(paths: list[Path]) -> dict[str, Any]:
    """config/config.yaml of this folder (the Snakefile's configfile) when present, then each file merged on top
    key by key, as Snakemake's --configfile does; validated like the workflow's config."""
    from stg.config import deep_merge, validate_config

    config: dict[str, Any] = {}
    base = Path("config/config.yaml")
    for path in ([base] if base.is_file() else []) + list(paths):
        layer = _read_yaml(path, "config file") or {}
        if not isinstance(layer, dict):
            raise InputError(path, f"config file must map keys to values, not be a {type(layer).__name__}")
        config = deep_merge(config, layer)
    validate_config(config, " + ".join(map(str, paths)))
    return config


def cmd_weights_list(args: argparse.Namespace) -> None:
    from stg.weights_registry import format_weights_table, list_weights

    print(format_weights_table(list_weights(_layered_config(args.configfile) if args.configfile else None)))


def cmd_train_segmenter(args: argparse.Namespace) -> None:
    from stg.models import training_settings
    from stg.settings import validate_section
    from stg.train.stage import train_segmenter

    given = _settings(args.settings)
    validate_section("#/$defs/segmenter_training", given, "--settings: key 'training.segmenter")
    settings = training_settings({"training": {"segmenter": given}}, "segmenter")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # OpenMP threads beyond the job's cores spin and collapse throughput
    data, validation = _json_list(args.data, "--data"), _json_list(args.validation, "--validation")
    if not data:
        raise InputError("--data", "no training data: give at least one {root, layout, split}")
    train_segmenter(settings, data, args.out, args.work or args.out.parent / ".work" / args.out.name, key=args.key,
                    validation=validation, device=args.device or settings["device"])


def cmd_train_graph(args: argparse.Namespace) -> None:
    from stg.models import training_settings
    from stg.settings import validate_section
    from stg.train.stage import train_graph

    given = _settings(args.settings)
    validate_section("#/$defs/graph_training", given, "--settings: key 'training.graph")
    settings = training_settings({"training": {"graph": given}}, "graph")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data, validation = _json_list(args.data, "--data"), _json_list(args.validation, "--validation")
    if not data:
        raise InputError("--data", "no training data: give at least one {root, layout, split, segment, warp}")
    train_graph(settings, data, args.out, args.work or args.out.parent / ".work" / args.out.name, key=args.key,
                validation=validation, device=args.device or settings["device"])


def cmd_online_learn(args: argparse.Namespace) -> None:
    from stg.settings import stage_settings
    from stg.stages import open_video
    from stg.train.stage import learn_online

    settings = stage_settings("segment", _settings(args.settings), source="--settings")
    if not settings["deeplab"]["online_learning"]["steps"]:
        raise InputError("--settings", "deeplab.online_learning.steps is 0: online learning is off, nothing to learn")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    video = open_video(args)
    learn_online(video, settings, args.out, args.work or args.out.parent / ".work" / args.out.name, key=args.key,
                 device=args.device or settings["device"])


def _training_options(parser: argparse.ArgumentParser) -> None:
    """The options every training command shares: where it runs, its work and output folders, its key."""
    parser.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (default: the settings' device)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--work", type=Path, help="resumable checkpoints (default: <out's folder>/.work/<out's name>)")
    parser.add_argument("--key", default="", help="model key recorded in training.json")
    parser.add_argument("--out", required=True, type=Path, help="model folder: model.pt, training.json, curve.png")


def _json_list(text: str | None, option: str) -> list[dict[str, Any]]:
    """--data / --validation: a JSON list of {root, layout, split[, resolution][, flow: {video: store}]}."""
    value = _settings(text, option) if text else []
    if not isinstance(value, list) or not all(isinstance(v, dict) and {"root", "layout", "split"} <= set(v)
                                              for v in value):
        raise InputError(option, "expected a JSON list of {root, layout, split[, flow]} objects")
    return value


def cmd_results(args: argparse.Namespace) -> None:
    from stg.results import write_run

    write_run(dataset_root=args.dataset_root, split=args.split, label_stores=args.labels, out=args.out,
              plan=_settings(args.plan, "--plan"),
              benchmarks=args.benchmarks or [], processes=args.processes, layout=args.layout)


def cmd_compare(args: argparse.Namespace) -> None:
    from stg.compare import format_table, load_runs, write_compare

    if args.frames < 0:
        raise InputError("--frames", f"must be 0 or more, got {args.frames}")
    runs = load_runs([args.reference, *args.runs])
    print(format_table(runs), flush=True)
    write_compare(runs, args.out, frames=args.frames)


def _add_stage_parser(commands: Any, stage: Stage) -> None:
    """`stg <stage>`, derived from the stage's row: its inputs, options and execution-only knobs."""
    parser = commands.add_parser(stage.name, help=stage.help)
    if stage.reads_video:
        _add_dataset_args(parser)
    for role in stage.store_roles:
        parser.add_argument(f"--{role.replace('_', '-')}", required=role not in stage.either_roles, type=Path,
                            help=f"{role} store of the video")
    for option in stage.options:
        parser.add_argument(option.flag, **option.kwargs)
    parser.add_argument("--settings", help=f"stage settings as JSON or @file (config's stages.{stage.name}; "
                        "omitted ones take the schema's defaults)")
    if stage.takes_device():
        parser.add_argument("--device", default=None, help="torch backends: auto | cpu | cuda[:N] (default: the "
                            "settings' device)")
        parser.add_argument("--batch-size", type=int, default=0, help="the chosen backend's batch_size for this run "
                            "(0: the setting)")
    parser.add_argument("--key", default="", help="stage key recorded in the store")
    parser.add_argument("--out", required=True, type=Path, help="output Zarr store")
    parser.set_defaults(func=cmd_stage)


def _add_metrics_parser(commands: Any) -> None:
    """`stg metrics`."""
    metrics = commands.add_parser("metrics", help="DAVIS J/F/G, identical to the official toolkit")
    metrics.add_argument("--davis-root", required=True, type=Path, help="DAVIS 2017 or 2016 layout root")
    metrics.add_argument("--results", required=True, type=Path, help="folder of <seq>/<frame>.png results")
    metrics.add_argument("--set", required=True, help="split, e.g. val")
    metrics.add_argument("--layout", default=None, choices=LAYOUT_CHOICES,
                         help="dataset layout (default: DAVIS 2017 or 2016, detected from ImageSets)")
    metrics.add_argument("--out", required=True, type=Path, help="folder for the CSVs and metrics.json")
    metrics.add_argument("--processes", type=int, default=2)
    metrics.set_defaults(func=cmd_metrics)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The `stg` parser; `only="metrics"` builds just that command, without importing the stage table
    (stg.stages and its schema libraries cost about 0.1 s of a metrics run's start-up)."""
    parser = argparse.ArgumentParser(prog="stg", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    if only == "metrics":
        _add_metrics_parser(commands)
        return parser

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

    from stg.stages import STAGES

    for stage in STAGES.values():
        _add_stage_parser(commands, stage)

    report = commands.add_parser("proposals-report", help="box recall and oracle J of segment stores")
    report.add_argument("--segment", required=True, nargs="+", type=Path, help="segment stores")
    report.add_argument("--out", required=True, type=Path, help="JSON file to write")
    report.add_argument("--dataset-root", type=Path, help="recompute from this dataset's ground truth "
                        "(default: the reports stored by the segment stage)")
    report.add_argument("--layout", default=None, choices=LAYOUT_CHOICES)
    report.add_argument("--split", default="val", help="split listing the videos (with --dataset-root)")
    report.set_defaults(func=cmd_proposals_report)

    _add_metrics_parser(commands)

    weights = commands.add_parser("weights", help="pretrained weights files the project knows")
    weights_commands = weights.add_subparsers(dest="weights_command", required=True)
    listing = weights_commands.add_parser("list", help="each known file: status (sha256 checked), where it is found, "
                                          "licence, source, the settings that use it")
    listing.add_argument("--configfile", nargs="+", type=Path, help="config files, layered on config/config.yaml as "
                         "Snakemake does: their weights path settings are reported as user files (default: every "
                         "file at its default place)")
    listing.set_defaults(func=cmd_weights_list)

    train = commands.add_parser("train-segmenter", help="train the RGB + Q DeepLabv3+ segmenter (resumable)")
    train.add_argument("--settings", help="training settings as JSON or @file (config's training.segmenter; omitted "
                       "ones take the schema's defaults)")
    train.add_argument("--data", required=True, help="JSON list of {root, layout, split, flow: {video: flow store}} "
                       "(without flow: Q is the unwarped previous mask)")
    train.add_argument("--validation", help="held-out splits, same form as --data: crop J in the history")
    _training_options(train)
    train.set_defaults(func=cmd_train_segmenter)

    tg = commands.add_parser("train-graph", help="train the graph's MobileNetV2 features with Eq. 9 (resumable)")
    tg.add_argument("--settings", help="training settings as JSON or @file (config's training.graph; omitted "
                    "settings take the schema's defaults)")
    tg.add_argument("--data", required=True, help="JSON list of {root, layout, split, segment: {video: segment "
                    "store}, warp: {video: warp store}}: the cached proposals and priors of each training split")
    tg.add_argument("--validation", help="held-out splits, same form as --data: loss, J and selection agreement in "
                    "the history")
    _training_options(tg)
    tg.set_defaults(func=cmd_train_graph)

    ol = commands.add_parser("online-learn", help="fine-tune the segmenter on one video's first annotated frame "
                             "(online learning; resumable)")
    _add_dataset_args(ol)
    ol.add_argument("--settings", required=True, help="the segment stage's settings as JSON or @file (config's "
                    "stages.segment; deeplab.online_learning is the recipe, deeplab.weights the start)")
    _training_options(ol)
    ol.set_defaults(func=cmd_online_learn)

    results = commands.add_parser("results", help="write a run folder: palette PNGs, metrics, run.json")
    results.add_argument("--dataset-root", required=True, type=Path)
    results.add_argument("--split", required=True)
    results.add_argument("--layout", default=None, choices=LAYOUT_CHOICES,
                         help="dataset layout (default: DAVIS 2017 or 2016, detected from ImageSets)")
    results.add_argument("--labels", required=True, nargs="+", type=Path, help="label stores, one per video")
    results.add_argument("--plan", help="run description (settings, keys, variant, stores) as JSON or @file")
    results.add_argument("--benchmarks", nargs="*", type=Path, help="Snakemake benchmark TSVs of upstream jobs")
    results.add_argument("--processes", type=int, default=2)
    results.add_argument("--out", required=True, type=Path)
    results.set_defaults(func=cmd_results)

    compare = commands.add_parser("compare", help="compare run folders: printed table and one HTML page")
    compare.add_argument("reference", type=Path, help="reference run folder (results/<run>); deltas are vs it")
    compare.add_argument("runs", nargs="+", type=Path, help="other run folders of the same dataset split")
    compare.add_argument("--out", required=True, type=Path, help="HTML file to write (self-contained)")
    compare.add_argument("--frames", type=int, default=6, help="frames with the largest J difference shown per "
                         "other run (default: 6; 0: none)")
    compare.set_defaults(func=cmd_compare)
    return parser


# commands whose --out is a file; every other --out (and --work) is a folder
FILE_OUTPUTS = {"proposals-report", "compare"}


def check_output_location(path: Path, option: str = "--out", folder: bool = True) -> None:
    """Refuse, before any work, an output whose folder cannot be made or written: the nearest existing folder
    above it must be a folder (not a file) and writable, and a folder output must not replace an existing file
    (the atomic write would delete it); the error names the path and the problem."""
    import os

    if folder and path.exists() and not path.is_dir():
        raise InputError(path, f"{option} is an existing file, not a folder: writing the output would delete it; "
                         "remove it or choose another path")
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        if parent.is_symlink():
            raise InputError(path, f"{option} cannot be written: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(path, f"{option} cannot be written: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(path, f"{option} cannot be written: folder {parent} is not writable (permissions or a "
                         "read-only file system)")


def os_error_message(error: OSError, out: Path | None) -> str:
    """One line for an OSError: the file, the problem and, for a full disk or a read-only place, the output."""
    import errno

    where = error.filename or out or "?"
    problem = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        target = f"writing {out}" if out is not None else "writing"
        return f"{where}: {problem} ({target}); free space and rerun"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}: {problem}; check that the folder is writable"
    if error.errno == errno.ENOTDIR:
        return f"{where}: {problem} (a file stands where a folder is needed)"
    return f"{where}: {problem}"


def _command_word(argv: list[str]) -> str | None:
    """The subcommand named on the command line (its first word not starting with "-"), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    only = "metrics" if _command_word(words) == "metrics" else None
    args = build_parser(only).parse_args(words)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    out = getattr(args, "out", None)
    try:
        for option in ("out", "work"):
            if getattr(args, option, None) is not None:
                check_output_location(getattr(args, option), f"--{option}",
                                      folder=option != "out" or args.command not in FILE_OUTPUTS)
        args.func(args)
    except (InputError, StoreError) as error:
        print(f"stg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a read-only folder, ...: one line, no traceback
        log.debug("traceback", exc_info=True)  # -v shows where it came from
        print(f"stg {args.command}: error: {os_error_message(error, out)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
