"""Objects that start after frame 0 (YouTube-VOS, YouTube-Objects, a folder), through every stage, on the synthetic
layouts of stg.datasets.synthetic_layouts: nothing before an object's start frame, its seed mask at it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stg.cli import main
from stg.datasets import LAYOUTS, open_dataset, read_labels, seed_schedule
from stg.datasets.synthetic_layouts import (
    write_folder,
    write_segtrack_v2,
    write_youtube_objects,
    write_youtube_vos,
)
from stg.graph.stage import compute_graph_store
from stg.graph.tracker import NOT_STARTED, Q_NODE
from stg.store import build_store, open_store

LATE_VIDEO = "synth03-triple"  # write_youtube_vos: its object 3 enters late (frame >= 3)
MINIMAL = {"proposals": "cached", "threshold": 0.2, "spatial": False, "temporal": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("late")
    write_youtube_vos(base / "ytvos_train", split="train", num_frames=10)
    write_youtube_vos(base / "ytvos_valid", split="valid", num_frames=10)
    write_segtrack_v2(base / "segtrack")
    write_youtube_objects(base / "ytobj")
    write_folder(base / "folder", video_suffix=".avi")
    return base


def test_cli_layouts_are_the_readers():
    from stg.cli import LAYOUT_CHOICES

    assert LAYOUT_CHOICES == LAYOUTS


def test_seed_schedule_starts_each_object_once(data: Path):
    video = open_dataset(data / "ytvos_valid", "youtube_vos", "valid").video(LATE_VIDEO)
    seeds = seed_schedule(video)
    late = video.object_starts[3]
    assert late >= 2 and sorted(seeds) == [0, late]
    assert set(np.unique(seeds[0])) == {0, 1, 2} and set(np.unique(seeds[late])) == {0, 3}


# ------------------------------------------------------------------ flow, warp, propagate, graph (CLI and stage)


@pytest.fixture(scope="module")
def chain(data: Path, tmp_path_factory: pytest.TempPathFactory):
    """Flow, warp and propagate stores of the late video (YouTube-VOS train: every frame annotated)."""
    root = data / "ytvos_train"
    out = tmp_path_factory.mktemp("chain")
    video = open_dataset(root, "youtube_vos", "train").video(LATE_VIDEO)
    common = ["--dataset-root", str(root), "--layout", "youtube_vos", "--split", "train", "--video", LATE_VIDEO]
    assert main(["flow", *common, "--out", str(out / "flow.zarr")]) == 0
    assert main(["warp", *common, "--flow", str(out / "flow.zarr"), "--out", str(out / "warp.zarr")]) == 0
    assert main(["propagate", "--warp", str(out / "warp.zarr"), "--out", str(out / "propagate.zarr")]) == 0
    truth = np.stack([read_labels(video, index) for index in range(len(video.frame_names))])
    return video, out, truth


def test_warp_prior_is_empty_before_the_start_and_the_seed_at_it(chain):
    video, out, truth = chain
    warp = open_store(out / "warp.zarr", "warp")
    late = video.object_starts[3]
    priors = warp["priors"][:]
    assert priors.shape[:2] == (len(video.frame_names), 3)
    assert not priors[:late, 2].any(), "nothing of the late object before its start"
    np.testing.assert_array_equal(priors[late, 2] == 255, truth[late] == 3)
    assert set(np.unique(priors[late, 2])) <= {0, 255}, "the seed itself, not a warped mask"
    assert priors[late + 1, 2].sum() > 0, "warped on after its start"
    assert not priors[late, :2][:, truth[late] == 3].any(), "the seed's pixels are the late object's alone"
    assert warp.attrs["object_starts"] == {"1": 0, "2": 0, "3": late}
    np.testing.assert_array_equal(priors[0, 0] == 255, truth[0] == 1)


def test_propagate_labels_the_late_object_from_its_start(chain):
    video, out, truth = chain
    labels = open_store(out / "propagate.zarr", "labels")["labels"][:]
    late = video.object_starts[3]
    assert not (labels[:late] == 3).any()
    np.testing.assert_array_equal(labels[late] == 3, truth[late] == 3)
    assert (labels[late + 1:] == 3).any()


def truth_proposals(path: Path, video, truth: np.ndarray) -> Path:
    """A segment store whose proposals are the true masks of every object present (so also before a late object's
    start would it be wrongly picked, were it assigned proposals), plus a distractor in the corner."""
    height, width = truth.shape[1:]
    boxes, scores, masks = [], [], []
    for frame in truth:
        frame_boxes, frame_scores, frame_masks = [], [], []
        for obj in range(1, 4):
            mask = frame == obj
            if not mask.any():
                continue
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            frame_boxes.append([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
            frame_scores.append(0.9)
            frame_masks.append(mask.astype(np.uint8) * 255)
        corner = np.zeros((height, width), np.uint8)
        corner[:4, :4] = 255
        frame_boxes.append([0, 0, 4, 4])
        frame_scores.append(0.99)
        frame_masks.append(corner)
        boxes.append(np.array(frame_boxes, np.float32))
        scores.append(np.array(frame_scores, np.float32))
        masks.append(np.array(frame_masks, np.uint8))
    attrs = {"frame_names": video.frame_names, "image_size": [height, width], "video": video.name, "key": "t"}
    with build_store(path, "segment", attrs) as store:
        store.ragged("boxes", boxes, np.float32)
        store.ragged("scores", scores, np.float32)
        store.ragged("masks", masks, np.uint8, chunk_rows=1)
    return path


def test_graph_seeds_the_late_object_at_its_start(chain):
    video, out, truth = chain
    late = video.object_starts[3]
    segment = open_store(truth_proposals(out / "segment.zarr", video, truth), "segment")
    summary = compute_graph_store(video, segment, open_store(out / "warp.zarr", "warp"),
                                  open_store(out / "flow.zarr", "flow"), None, MINIMAL, out / "graph.zarr", key="k")
    store = open_store(out / "graph.zarr", "labels")
    labels, chosen = store["labels"][:], store["chosen"][:]
    assert not (labels[:late] == 3).any(), "nothing of the late object before its start"
    np.testing.assert_array_equal(labels[late] == 3, truth[late] == 3)
    assert (chosen[:late, 2] == NOT_STARTED).all() and chosen[late, 2] == Q_NODE
    assert (chosen[late + 1:, 2] >= 0).all(), "after its start it follows its proposals"
    assert not store["no_proposal"][:late, 2].any()
    assert summary["lost_frames"][2] == 0, "frames before the start are not lost"
    assert store.attrs["object_starts"] == {"1": 0, "2": 0, "3": late}
    for t in range(1, len(truth)):
        for obj in (1, 2, 3):
            if (truth[t] == obj).any() and t > (late if obj == 3 else 0):
                inter = np.logical_and(labels[t] == obj, truth[t] == obj).sum()
                union = np.logical_or(labels[t] == obj, truth[t] == obj).sum()
                assert inter / union > 0.9, (t, obj)


def test_graph_with_temporal_memory_and_spatial_graph(chain):
    """The late object's temporal memory starts at its seed (no crash with CNN features, masks still follow)."""
    from stg.features.backends import make_features_backend

    video, out, truth = chain
    late = video.object_starts[3]
    features = make_features_backend({"backend": "mobilenet_v2", "mobilenet_v2": {"node_size": 64}}, "cpu")
    segment = open_store(out / "segment.zarr", "segment") if (out / "segment.zarr").exists() else \
        open_store(truth_proposals(out / "segment.zarr", video, truth), "segment")
    settings = {"proposals": "cached", "threshold": 0.2, "temporal_size": [64, 64]}
    compute_graph_store(video, segment, open_store(out / "warp.zarr", "warp"), open_store(out / "flow.zarr", "flow"),
                        features, settings, out / "graph_full.zarr", key="k")
    labels = open_store(out / "graph_full.zarr", "labels")["labels"][:]
    assert not (labels[:late] == 3).any()
    np.testing.assert_array_equal(labels[late] == 3, truth[late] == 3)
    assert (labels[late + 1:] == 3).any()


def test_valid_split_runs_warp_on_seed_annotations_only(data: Path, tmp_path: Path):
    """YouTube-VOS valid: only the seed frames are annotated; the warp stage needs nothing else."""
    root = data / "ytvos_valid"
    common = ["--dataset-root", str(root), "--layout", "youtube_vos", "--split", "valid", "--video", LATE_VIDEO]
    assert main(["flow", *common, "--out", str(tmp_path / "flow.zarr")]) == 0
    assert main(["warp", *common, "--flow", str(tmp_path / "flow.zarr"), "--out", str(tmp_path / "warp.zarr")]) == 0
    video = open_dataset(root, "youtube_vos", "valid").video(LATE_VIDEO)
    priors = open_store(tmp_path / "warp.zarr", "warp")["priors"][:]
    late = video.object_starts[3]
    assert not priors[:late, 2].any() and priors[late, 2].any()


# ------------------------------------------------------------------ metrics


def write_results(root: Path, dataset, results: Path, labels_of=None) -> None:
    """Result PNGs for every frame of every video: `labels_of(video, index)`, default its annotation (background
    where a frame has none)."""
    from stg.palette import write_palette_png

    for video in dataset.videos():
        folder = results / video.name
        folder.mkdir(parents=True)
        for index, name in enumerate(video.frame_names):
            if labels_of is not None:
                labels = labels_of(video, index)
            elif name in video.annotation_paths:
                labels = read_labels(video, index)
            else:
                labels = np.zeros(read_labels(video, video.seed_frames[0]).shape, np.uint8)
            write_palette_png(folder / f"{name}.png", np.where(labels == 255, 0, labels).astype(np.uint8))


def test_metrics_on_youtube_objects_score_the_annotated_frames_after_each_start(data: Path, tmp_path: Path):
    from stg.metrics.evaluation import evaluate

    root = data / "ytobj"
    dataset = open_dataset(root, "youtube_objects", "all")
    write_results(root, dataset, tmp_path / "res")
    metrics = evaluate(root, tmp_path / "res", "all", processes=1, progress=False, layout="youtube_objects")
    assert metrics["global"]["J-Mean"] == pytest.approx(1.0) and metrics["global"]["F-Mean"] == pytest.approx(1.0)
    for video in dataset.videos():
        for obj, start in video.object_starts.items():
            frames = metrics["per_frame"][f"{video.name}_{obj}"]["frames"]
            expected = [video.frame_names[i] for i in video.scored_frames if i > start]
            assert frames == expected and frames, (video.name, obj)
            assert all(video.frame_names.index(name) in (4, 7) for name in frames), "annotated frames only"


def test_metrics_ignore_an_object_before_its_start(data: Path, tmp_path: Path):
    """YouTube-VOS train: garbage for the late object before its start changes nothing; after it, it counts."""
    from stg.metrics.evaluation import evaluate

    root = data / "ytvos_train"
    dataset = open_dataset(root, "youtube_vos", "train")
    late = dataset.video(LATE_VIDEO).object_starts[3]

    def early_garbage(video, index):
        labels = read_labels(video, index).copy()
        if video.name == LATE_VIDEO and index < late:
            labels[labels == 0] = 3  # the late object "found" everywhere before it exists
        return labels

    write_results(root, dataset, tmp_path / "res", early_garbage)
    metrics = evaluate(root, tmp_path / "res", "train", processes=1, progress=False, layout="youtube_vos")
    curve = metrics["per_frame"][f"{LATE_VIDEO}_3"]
    video = dataset.video(LATE_VIDEO)
    assert curve["frames"] == video.frame_names[late + 1:]
    assert metrics["objects"][f"{LATE_VIDEO}_3"]["J-Mean"] == pytest.approx(1.0)
    assert metrics["per_frame"][f"{LATE_VIDEO}_1"]["frames"] == video.frame_names[1:], "last frame scored too"


def test_metrics_on_segtrack_v2(data: Path, tmp_path: Path):
    from stg.metrics.evaluation import evaluate

    root = data / "segtrack"
    dataset = open_dataset(root, "segtrack_v2", "all")

    def shifted(video, index):
        return np.roll(read_labels(video, index), 2, axis=1)

    write_results(root, dataset, tmp_path / "res", shifted)
    metrics = evaluate(root, tmp_path / "res", "all", processes=1, progress=False, layout="segtrack_v2")
    names = {name.rsplit("_", 1)[0] for name in metrics["objects"]}
    assert names == set(dataset.video_names())
    assert any(name.endswith("_2") for name in metrics["objects"]), "the multi-object sequence's masks combined"
    assert 0.5 < metrics["global"]["J-Mean"] < 1.0
    for video in dataset.videos():
        assert metrics["per_frame"][f"{video.name}_1"]["frames"] == video.frame_names[1:]


def test_unscorable_split_raises_nothing_to_score(data: Path, tmp_path: Path):
    from stg.metrics.evaluation import NothingToScore, evaluate

    root = data / "ytvos_valid"
    write_results(root, open_dataset(root, "youtube_vos", "valid"), tmp_path / "res")
    with pytest.raises(NothingToScore, match="no ground truth"):
        evaluate(root, tmp_path / "res", "valid", processes=1, progress=False, layout="youtube_vos")


# ------------------------------------------------------------------ run folders


def label_stores(dataset, out: Path) -> list[Path]:
    """One label store per video, holding its seeds carried on unchanged (what a run's last stage writes)."""
    stores = []
    for video in dataset.videos():
        seeds = seed_schedule(video)
        shape = next(iter(seeds.values())).shape
        labels = np.zeros((len(video.frame_names), *shape), np.uint8)
        for frame in sorted(seeds):
            seed = np.where(seeds[frame] == 255, 0, seeds[frame])
            labels[frame:][:, seed > 0] = seed[seed > 0]
        attrs = {"frame_names": video.frame_names, "image_size": list(shape), "video": video.name, "key": "t",
                 "num_objects": video.num_objects}
        path = out / f"{video.name}.zarr"
        with build_store(path, "labels", attrs) as store:
            store.array("labels", labels.shape, np.uint8)[:] = labels
        stores.append(path)
    return stores


def test_youtube_vos_valid_run_writes_annotations_and_submission_zip(data: Path, tmp_path: Path):
    import json
    import zipfile

    from stg.results import write_run

    root = data / "ytvos_valid"
    dataset = open_dataset(root, "youtube_vos", "valid")
    run = write_run(root, "valid", label_stores(dataset, tmp_path), tmp_path / "run", {"dataset": "yt"}, [],
                    processes=1, layout="youtube_vos")
    folder = tmp_path / "run"
    assert run["scored"] is False and run["global"] is None
    assert not (folder / "metrics.json").exists()
    expected = {f"Annotations/{video.name}/{name}.png" for video in dataset.videos() for name in video.frame_names}
    with zipfile.ZipFile(folder / "submission.zip") as archive:
        assert set(archive.namelist()) == expected, "every input frame, under Annotations/"
    assert {str(p.relative_to(folder)) for p in (folder / "Annotations").rglob("*.png")} == expected
    assert json.loads((folder / "run.json").read_text())["layout"] == "youtube_vos"
    html = (folder / "report.html").read_text()
    assert "Nothing to score" in html
    assert html.count("<figure>") >= len(dataset.video_names()), "overlays are still shown"


def test_folder_run_writes_masks_and_an_overlay_video(data: Path, tmp_path: Path):
    import cv2

    from stg.results import write_run

    root = data / "folder"
    dataset = open_dataset(root, "folder", "all")
    write_run(root, "all", label_stores(dataset, tmp_path), tmp_path / "run", {}, [], processes=1, layout="folder")
    for video in dataset.videos():
        pngs = sorted((tmp_path / "run" / "Annotations" / video.name).glob("*.png"))
        assert [p.stem for p in pngs] == sorted(video.frame_names)
        capture = cv2.VideoCapture(str(tmp_path / "run" / "overlays" / f"{video.name}.avi"))
        count = 0
        while capture.read()[0]:
            count += 1
        capture.release()
        assert count == len(video.frame_names)
    assert "Nothing to score" in (tmp_path / "run" / "report.html").read_text()


def test_scorable_layout_run_is_scored(data: Path, tmp_path: Path):
    from stg.results import write_run

    root = data / "segtrack"
    dataset = open_dataset(root, "segtrack_v2", "all")
    run = write_run(root, "all", label_stores(dataset, tmp_path), tmp_path / "run", {}, [], processes=1,
                    layout="segtrack_v2")
    assert "scored" not in run and 0 < run["global"]["J-Mean"] <= 1.0
    assert (tmp_path / "run" / "metrics.json").is_file() and not (tmp_path / "run" / "submission.zip").exists()


def test_proposal_report_by_hand_on_another_layout(data: Path, tmp_path: Path):
    """`stg proposals-report --dataset-root --layout` recomputes from a YouTube-VOS train split's ground truth."""
    import json

    root = data / "ytvos_train"
    video = open_dataset(root, "youtube_vos", "train").video(LATE_VIDEO)
    truth = np.stack([read_labels(video, index) for index in range(len(video.frame_names))])
    store = truth_proposals(tmp_path / "segment.zarr", video, truth)
    assert main(["proposals-report", "--segment", str(store), "--out", str(tmp_path / "p.json"), "--dataset-root",
                 str(root), "--layout", "youtube_vos", "--split", "train"]) == 0
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["overall"]["recall"] == pytest.approx(1.0)


def test_online_learning_dreams_every_seed_frame(data: Path, random_segmenter, tmp_path: Path):
    """Online learning on a video whose object starts late: one dreamed clip per seed frame."""
    import json

    settings = json.dumps({"backend": "deeplab", "device": "cpu", "deeplab": {
        "weights": str(random_segmenter), "input_size": 64,
        "online_learning": {"steps": 2, "batch_size": 2, "frames": 2, "lr": 1e-3}}})
    root = data / "ytvos_valid"
    out = tmp_path / "online"
    assert main(["online-learn", "--dataset-root", str(root), "--layout", "youtube_vos", "--split", "valid",
                 "--video", LATE_VIDEO, "--settings", settings, "--threads", "1", "--key", "k", "--out",
                 str(out)]) == 0
    video = open_dataset(root, "youtube_vos", "valid").video(LATE_VIDEO)
    record = json.loads((out / "training.json").read_text())
    assert record["seed_frames"] == [video.frame_names[0], video.frame_names[video.object_starts[3]]]
    assert record["objects"] == 3 and (out / "model.pt").is_file()


def test_detect_and_segment_stages_follow_the_late_object(chain):
    """The motion detector and GrabCut run on the late video (an empty Q plane before the start is no error); the
    cached graph over their proposals leaves the late object empty before its start and tracks it after."""
    video, out, truth = chain
    late = video.object_starts[3]
    common = ["--dataset-root", str(video.frame_paths[0].parents[3]), "--layout", "youtube_vos", "--split", "train",
              "--video", video.name]
    warp = str(out / "warp.zarr")
    assert main(["detect", *common, "--warp", warp, "--settings", '{"backend": "motion"}',
                 "--out", str(out / "detect_motion.zarr")]) == 0
    assert main(["segment", *common, "--detect", str(out / "detect_motion.zarr"), "--warp", warp,
                 "--settings", '{"backend": "grabcut"}', "--out", str(out / "segment_grabcut.zarr")]) == 0
    compute_graph_store(video, open_store(out / "segment_grabcut.zarr", "segment"), open_store(warp, "warp"),
                        open_store(out / "flow.zarr", "flow"), None, MINIMAL, out / "graph_grabcut.zarr", key="k")
    labels = open_store(out / "graph_grabcut.zarr", "labels")["labels"][:]
    assert not (labels[:late] == 3).any()
    np.testing.assert_array_equal(labels[late] == 3, truth[late] == 3)
    after = [t for t in range(late + 1, len(truth)) if (truth[t] == 3).any()]
    assert after and all((labels[t] == 3).any() for t in after), "the late object is tracked after its start"
