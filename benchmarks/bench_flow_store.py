"""Flow store encodings: bytes per frame, encode/decode time, flow error, and the effect on `propagate` J.

DIS flow (the config's backend settings, default preset) is computed once per video, then written by the flow
stage itself (stg.flow.stage.compute_flow_store, the flow replayed) in each encoding: float16 (the format before
issue 13), int16 with 1/8 px bins (the default) and 1/16 px bins, plus two float32 stores: the exact flow (the
reference) and the flow rounded to the nearest 1/16 px (round-to-nearest levels, rejected: see stg.flow.store).
Each store goes through warp -> propagate (stg.warp.stage, default settings) and the label maps are scored with
stg.metrics.evaluate (J, first and last frames unscored). A second table compares compressors on int16 flow
sampled from the videos (numcodecs, the library behind Zarr's Blosc and Zstd codecs).

Datasets: `reduced-demo` (.test/config/config.yaml's synthetic demo), `demo` (config/config.yaml's: 4 videos at
854x480) and `foldcheck` (ImageSets/480p/foldcheck.txt of ../shared/data/davis2016-train; skipped with a message
when absent). Bytes per frame are the store's bytes over the video's frames (as bench_stages.py).

    nice -n 15 python benchmarks/bench_flow_store.py [--datasets reduced-demo demo foldcheck] [--preset medium]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import yaml

from stg.datasets import open_dataset, read_first_mask, read_frames
from stg.datasets.synthetic import generate
from stg.flow.backends import make_flow_backend
from stg.flow.stage import compute_flow_store
from stg.flow.store import DIRECTIONS, quantise_flow, read_flow
from stg.metrics.evaluation import evaluate
from stg.results import export_pngs
from stg.settings import defaults, stage_settings
from stg.store import build_store, open_store
from stg.warp.stage import FirstFrameSource, WarpSettings, compute_propagate_store, compute_warp_store

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DAVIS16 = REPO.parent / "shared" / "data" / "davis2016-train"
# name -> flow settings beyond the backend's, or a function of the float32 flow written as a plain float32 store
ENCODINGS: dict[str, dict[str, Any] | Callable[[np.ndarray], np.ndarray]] = {
    "float32": lambda flow: flow,
    "float16 (old)": {"encoding": "float16"},
    "int16 1/8": {"encoding": "int16", "int16_scale": 8},
    "int16 1/16": {"encoding": "int16", "int16_scale": 16},
    "nearest 1/16": lambda flow: np.rint(flow * 16) / 16,
}
OLD, NEW = "float16 (old)", "int16 1/8"
CODEC_SAMPLES = 24  # frames (forward + backward) per dataset for the compressor table


class Recorded:
    """A flow backend that replays outputs computed once, in the order the flow stage asks for them."""

    def __init__(self, backend: Any, outputs: list[np.ndarray]) -> None:
        self.name, self.batch_size, self._identity = backend.name, backend.batch_size, backend.identity()
        self._outputs: Iterator[np.ndarray] = iter(outputs)

    def identity(self) -> dict[str, Any]:
        return self._identity

    def flow(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        out = next(self._outputs)
        assert out.shape[:3] == sources.shape[:3], "replayed flow does not match the stage's batches"
        return out


def compute_outputs(frames: np.ndarray, backend: Any) -> list[np.ndarray]:
    """The backend's outputs for the flow stage's batches (same batching as compute_flow_store)."""
    pairs, outputs = len(frames) - 1, []
    for start in range(0, pairs, backend.batch_size):
        stop = min(start + backend.batch_size, pairs)
        sources, targets = frames[start:stop], frames[start + 1:stop + 1]
        outputs.append(backend.flow(np.concatenate([sources, targets]), np.concatenate([targets, sources])))
    return outputs


def split_outputs(outputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    forward, backward = [], []
    for both in outputs:
        count = len(both) // 2
        forward.append(both[:count])
        backward.append(both[count:])
    return {"forward": np.concatenate(forward), "backward": np.concatenate(backward)}


def store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def write_float32(path: Path, flow: dict[str, np.ndarray], video: Any, height: int, width: int) -> None:
    """A float32 flow store as stores were before encodings were recorded (plain float arrays)."""
    attrs = {"frame_names": video.frame_names, "image_size": [height, width], "video": video.name}
    with build_store(path, "flow", attrs) as store:
        for name in DIRECTIONS:
            store.array(name, flow[name].shape, np.float32)[:] = flow[name]


def bench_dataset(label: str, root: Path, layout: str, split: str, work: Path, flow_settings: dict[str, Any],
                  samples: list[np.ndarray]) -> dict[str, Any]:
    dataset = open_dataset(root, layout, split)
    backend = make_flow_backend(flow_settings)
    warp_settings = defaults("warp")
    propagate_settings = defaults("propagate")
    source = FirstFrameSource(rebinarize=WarpSettings.from_dict(warp_settings).rebinarize)
    rows: dict[str, Any] = {"videos": {}, "totals": {name: {"bytes": 0, "write_s": 0.0, "read_s": 0.0, "max_err": 0.0,
                                                            "abs_err": 0.0, "values": 0, "clipped": 0}
                                                     for name in ENCODINGS}, "frames": 0, "flow_s": 0.0}
    labels_stores: dict[str, list[Path]] = {name: [] for name in ENCODINGS}
    for video in dataset.videos():
        started = time.perf_counter()
        frames = read_frames(video)
        read_s = time.perf_counter() - started
        height, width = frames.shape[1:3]
        started = time.perf_counter()
        outputs = compute_outputs(frames, backend)
        rows["flow_s"] += time.perf_counter() - started
        reference = split_outputs(outputs)
        for index in range(0, len(frames) - 1, 10):  # codec table: every 10th pair of the video
            samples.append(np.stack([reference[name][index] for name in DIRECTIONS]))
        first_labels, num_objects = read_first_mask(video)
        rows["frames"] += len(frames)
        per_video = rows["videos"].setdefault(video.name, {"frames": len(frames)})
        for index, (name, extra) in enumerate(ENCODINGS.items()):
            folder = work / label / f"e{index}"
            flow_path, warp_path, labels_path = (folder / f"{s}-{video.name}.zarr" for s in ("flow", "warp", "labels"))
            started = time.perf_counter()
            if callable(extra):
                write_float32(flow_path, {name: extra(reference[name]) for name in DIRECTIONS}, video, height, width)
            else:
                compute_flow_store(video, Recorded(backend, outputs), flow_path, {**flow_settings, **extra})
            write_s = time.perf_counter() - started - (0.0 if callable(extra) else read_s)
            flow = open_store(flow_path, "flow")
            totals = rows["totals"][name]
            started = time.perf_counter()
            decoded = {direction: [read_flow(flow, direction, t) for t in range(len(frames) - 1)]
                       for direction in DIRECTIONS}
            totals["read_s"] += time.perf_counter() - started
            for direction in DIRECTIONS:
                error = np.abs(np.stack(decoded[direction]) - reference[direction]) if decoded[direction] else \
                    np.zeros(0)
                totals["max_err"] = max(totals["max_err"], float(error.max(initial=0.0)))
                totals["abs_err"] += float(error.sum(dtype=np.float64))
                totals["values"] += error.size
                totals["clipped"] += int(flow[direction].attrs.get("flow_encoding", {}).get("clipped", 0))
            del decoded
            totals["bytes"] += store_bytes(flow_path)
            totals["write_s"] += write_s
            per_video[name] = {"bytes": store_bytes(flow_path)}
            compute_warp_store(first_labels, num_objects, flow, source, warp_path, warp_settings, video=video.name)
            compute_propagate_store(open_store(warp_path, "warp"), labels_path, propagate_settings)
            labels_stores[name].append(labels_path)
        del outputs, reference
        print(f"  {label}/{video.name}: {len(frames)} frames done", flush=True)
    for index, name in enumerate(ENCODINGS):
        results = work / label / f"e{index}" / "results"
        export_pngs(labels_stores[name], results)
        scores = evaluate(root, results, split, processes=1, progress=False)
        rows["totals"][name]["J"] = scores["global"]["J-Mean"]
        for video_name, per_video in rows["videos"].items():
            objects = [row["J-Mean"] for key, row in scores["objects"].items() if key.rsplit("_", 1)[0] == video_name]
            per_video[name]["J"] = float(np.mean(objects))
    return rows


def codec_table(samples: list[np.ndarray]) -> list[tuple[str, float, float, float]]:
    """(name, bytes per frame (forward + backward), encode ms, decode ms per frame) of each alternative, on up to
    CODEC_SAMPLES frames spread over `samples` ((2, H, W, 2): forward and backward flow of one frame)."""
    if not samples:
        return []
    samples = [samples[int(i)] for i in np.linspace(0, len(samples) - 1, min(CODEC_SAMPLES, len(samples)))]
    plane_bytes = samples[0].shape[1] * samples[0].shape[2] * 2 * 2

    def blosc(clevel: int, shuffle: int = numcodecs.Blosc.SHUFFLE, whole: bool = True, cname: str = "zstd") -> Any:
        return numcodecs.Blosc(cname, clevel, shuffle, blocksize=plane_bytes if whole else 0)

    chosen = blosc(5)
    alternatives: list[tuple[str, Any, Any, bool]] = [  # name, scale (None: float16), codec, planar
        ("float16, blosc zstd 3 shuffle (old)", None, blosc(3, whole=False), False),
        ("int16 1/8 planar, blosc zstd 5 shuffle (chosen)", 8, chosen, True),
        ("int16 1/8 planar, blosc zstd 3 shuffle", 8, blosc(3), True),
        ("int16 1/8 planar, blosc zstd 9 shuffle", 8, blosc(9), True),
        ("int16 1/8 planar, blosc zstd 5 shuffle, auto blocks", 8, blosc(5, whole=False), True),
        ("int16 1/8 planar, blosc zstd 5 bitshuffle", 8, blosc(5, numcodecs.Blosc.BITSHUFFLE), True),
        ("int16 1/8 planar, blosc lz4 5 shuffle", 8, blosc(5, cname="lz4"), True),
        ("int16 1/8 planar, zstd 3 (no shuffle)", 8, numcodecs.Zstd(3), True),
        ("int16 1/8 planar, zstd 9 (no shuffle)", 8, numcodecs.Zstd(9), True),
        ("int16 1/8 planar, zstd 19 (no shuffle)", 8, numcodecs.Zstd(19), True),
        ("int16 1/8 interleaved, blosc zstd 5 shuffle", 8, chosen, False),
        ("int16 1/4 planar, blosc zstd 5 shuffle", 4, chosen, True),
        ("int16 1/16 planar, blosc zstd 5 shuffle", 16, chosen, True),
        ("int16 1/32 planar, blosc zstd 5 shuffle", 32, chosen, True),
    ]
    rows = []
    for name, scale, codec, is_planar in alternatives:
        size, encode_s, decode_s = 0, 0.0, 0.0
        for both in samples:
            for flow in both:  # a chunk is one direction of one frame pair
                started = time.perf_counter()
                values = flow.astype(np.float16) if scale is None else quantise_flow(flow, scale)[0]
                if is_planar:
                    values = np.ascontiguousarray(values.transpose(2, 0, 1))
                data = codec.encode(values)
                encode_s += time.perf_counter() - started
                started = time.perf_counter()
                codec.decode(data)
                decode_s += time.perf_counter() - started
                size += len(data)
        count = len(samples)
        rows.append((name, size / count, encode_s / count * 1e3, decode_s / count * 1e3))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["reduced-demo", "demo", "foldcheck"],
                        choices=["reduced-demo", "demo", "foldcheck"])
    parser.add_argument("--davis16", type=Path, default=DEFAULT_DAVIS16)
    parser.add_argument("--preset", default=None, help="DIS preset (default: the config's)")
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    flow_settings = stage_settings("flow", {k: v for k, v in config["stages"]["flow"].items()
                                            if k not in ("encoding", "int16_scale")})
    if args.preset:
        flow_settings["dis"]["preset"] = args.preset
    reduced = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())["datasets"]["demo"]["synthetic"]
    full = config["datasets"]["demo"]["synthetic"]
    results: list[tuple[str, dict[str, Any]]] = []
    samples: dict[str, list[np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.datasets:
            samples[name] = []
            if name in ("reduced-demo", "demo"):
                spec = reduced if name == "reduced-demo" else full
                root = work / f"data-{name}"
                generate(root, seed=spec["seed"], num_videos=spec["num_videos"],
                         frames=(spec["min_frames"], spec["max_frames"]), height=spec["height"], width=spec["width"])
                label = f"{name} ({spec['num_videos']} videos, {spec['width']}x{spec['height']})"
                results.append((label, bench_dataset(name, root, "davis2017", "val", work, flow_settings,
                                                     samples[name])))
            elif not (args.davis16 / "ImageSets" / "480p" / "foldcheck.txt").is_file():
                print(f"skipping foldcheck: {args.davis16}/ImageSets/480p/foldcheck.txt not found")
            else:
                results.append(("davis2016-train foldcheck (480p)", bench_dataset(
                    "foldcheck", args.davis16, "davis2016", "foldcheck", work, flow_settings, samples[name])))
    print(f"\nflow: {flow_settings['backend']} {flow_settings.get(flow_settings['backend'])}; "
          "B/frame = store bytes / video frames; error vs the float32 flow")
    for label, rows in results:
        frames = rows["frames"]
        print(f"\n== {label}: {len(rows['videos'])} videos, {frames} frames "
              f"(DIS {rows['flow_s'] / frames:.3f} s/frame)")
        print(f"{'encoding':16s} {'MB/frame':>9s} {'write ms/f':>10s} {'read ms/f':>9s} {'max err px':>10s} "
              f"{'mean err px':>11s} {'clipped':>7s} {'J':>7s} {'dJ vs old':>9s}")
        old_j = rows["totals"][OLD]["J"]
        for name, t in rows["totals"].items():
            print(f"{name:16s} {t['bytes'] / frames / 1e6:9.3f} {t['write_s'] / frames * 1e3:10.1f} "
                  f"{t['read_s'] / frames * 1e3:9.1f} {t['max_err']:10.5f} {t['abs_err'] / max(t['values'], 1):11.6f} "
                  f"{t['clipped']:7d} {t['J']:7.4f} {t['J'] - old_j:+9.4f}")
        print(f"\n{'video':20s} {'frames':>6s} " + f"{'MB/f old':>14s} {'MB/f new':>14s}"
              + " " + " ".join(f"{'J ' + name:>16s}" for name in ENCODINGS) + f" {'dJ new-old':>10s}")
        for video, row in rows["videos"].items():
            print(f"{video:20s} {row['frames']:6d} "
                  + " ".join(f"{row[n]['bytes'] / row['frames'] / 1e6:14.3f}" for n in (OLD, NEW)) + " "
                  + " ".join(f"{row[name]['J']:16.4f}" for name in ENCODINGS)
                  + f" {row[NEW]['J'] - row[OLD]['J']:+10.4f}")
        mean = {name: float(np.mean([row[name]["J"] for row in rows["videos"].values()])) for name in ENCODINGS}
        print(f"{'mean of videos':20s} {'':6s} {'':14s} {'':14s} " + " ".join(f"{mean[n]:16.4f}" for n in ENCODINGS)
              + f" {mean[NEW] - mean[OLD]:+10.4f}")
    for name, rows_samples in samples.items():
        table = codec_table(rows_samples)
        if not table:
            continue
        print(f"\n== compressors on {min(CODEC_SAMPLES, len(rows_samples))} sampled frames of {name} "
              "(forward + backward per frame; encode includes quantising)")
        print(f"{'alternative':58s} {'MB/frame':>9s} {'enc ms/f':>9s} {'dec ms/f':>9s}")
        for label, size, encode_ms, decode_ms in table:
            print(f"{label:58s} {size / 1e6:9.3f} {encode_ms:9.1f} {decode_ms:9.1f}")


if __name__ == "__main__":
    main()
