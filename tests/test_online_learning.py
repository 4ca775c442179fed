"""Online learning: the dreamed clip made from one annotated frame, the fine-tuning stage, its CLI and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stg.cli import main
from stg.train.online import DreamSpec, dream_video

STEPS = 4


def _frame_with_object(height: int = 64, width: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 80, size=(height, width, 3), dtype=np.uint8)
    labels = np.zeros((height, width), np.uint8)
    labels[20:44, 30:60] = 1
    image[labels == 1] = (220, 40, 40)
    return image, labels


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_dreamed_clip_moves_the_object_and_keeps_image_and_labels_together():
    image, labels = _frame_with_object()
    clip = dream_video("v", image, labels, 1, DreamSpec(frames=6), np.random.default_rng(0))
    assert clip.frames.shape == (7, 64, 96, 3) and clip.labels.shape == (7, 64, 96) and clip.warped.shape[:2] == (7, 1)
    assert np.array_equal(clip.frames[0], image) and np.array_equal(clip.labels[0], labels)
    moved = [t for t in range(1, 7) if not np.array_equal(clip.labels[t], labels)]
    assert len(moved) == 6, "every dreamed frame moves the object"
    for t in range(1, 7):
        obj = clip.labels[t] == 1
        assert obj.sum() > 200
        red = (clip.frames[t][..., 0] > 180) & (clip.frames[t][..., 1] < 80)
        assert _iou(red, obj) > 0.9, "the object's pixels move with its label"
        previous = clip.warped[t, 0] >= 128
        assert 0.3 < _iou(previous, obj) < 1.0, "Q is the object a little before: near, not equal"
    hole = clip.frames[1][labels == 1]
    assert not np.all(hole == (220, 40, 40)), "the background behind the object is filled in"


def test_dreamed_clip_is_a_function_of_the_seed():
    image, labels = _frame_with_object()
    a = dream_video("v", image, labels, 1, DreamSpec(frames=3), np.random.default_rng(5))
    b = dream_video("v", image, labels, 1, DreamSpec(frames=3), np.random.default_rng(5))
    c = dream_video("v", image, labels, 1, DreamSpec(frames=3), np.random.default_rng(6))
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.warped, b.warped)
    assert not np.array_equal(a.labels, c.labels)


@pytest.fixture()
def checkpoint(random_segmenter):
    return random_segmenter


def _settings(checkpoint, steps: int = STEPS, backend: str = "deeplab") -> str:
    return json.dumps({"backend": backend, "device": "cpu", "deeplab": {
        "weights": str(checkpoint), "input_size": 64,
        "online_learning": {"steps": steps, "batch_size": 2, "frames": 3, "lr": 1e-3}}})


def _video_args(tiny_dataset) -> list[str]:
    from stg.datasets import open_dataset

    video = open_dataset(tiny_dataset, "davis2017", "val").video_names()[0]
    return ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", video]


def test_online_learn_writes_a_model_that_differs_from_its_start(tiny_dataset, checkpoint, tmp_path):
    out = tmp_path / "online" / "video"
    assert main(["online-learn", *_video_args(tiny_dataset), "--settings", _settings(checkpoint), "--threads", "1",
                 "--key", "abc", "--out", str(out)]) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["model"] == "online-segmenter" and record["steps"] == STEPS and record["key"] == "abc"
    assert record["start"]["file"] == checkpoint.name and record["dream"]["frames"] == 3
    assert record["history"][-1]["loss"] > 0
    start = torch.load(checkpoint, weights_only=True)
    learned = torch.load(out / "model.pt", weights_only=True)
    assert set(start) == set(learned)
    assert any(not torch.allclose(start[k].float(), learned[k].float(), atol=1e-3) for k in start
               if start[k].is_floating_point())
    assert not (tmp_path / "online" / ".work").exists() or not any((tmp_path / "online" / ".work").iterdir())


def _dreamed_clip(tiny_dataset):
    """The first video's first frame dreamed into a 4-frame clip."""
    from stg.datasets import open_dataset, read_first_mask, read_frame

    video = open_dataset(tiny_dataset, "davis2017", "val").video(_video_args(tiny_dataset)[-1])
    labels, k = read_first_mask(video)
    return dream_video(video.name, read_frame(video.frame_paths[0]), labels, k, DreamSpec(frames=4),
                       np.random.default_rng(0))


def test_online_learning_lowers_the_loss_on_its_clip(tiny_dataset, checkpoint, tmp_path):
    from stg.train.online import OnlineTask
    from stg.train.segmenter import SegmenterSamples

    clip = _dreamed_clip(tiny_dataset)
    task = OnlineTask(clip, SegmenterSamples(input_size=64), torch.load(checkpoint, weights_only=True), "mobilenet_v2")
    inputs, targets = task.batch(0, 8, np.random.default_rng(123))

    def loss_of(model) -> float:
        model.eval()
        with torch.no_grad():
            return float(task.loss(model(inputs), targets))

    from stg.train.loop import Recipe, train

    before = loss_of(task.build_network())
    result = train(task, Recipe(steps=12, batch_size=4, lr=1e-3, schedule="constant"), tmp_path / "work",
                   progress=False)
    assert loss_of(result.model) < before


@pytest.mark.parametrize(("case", "message"), [
    ("off", "online_learning.steps is 0"),
    ("grabcut", "fine-tunes the deeplab segmenter"),
    ("missing", "weights file is missing"),
])
def test_online_learn_refuses_bad_settings_and_leaves_nothing(tiny_dataset, checkpoint, tmp_path, capsys, case,
                                                              message):
    settings = {"off": _settings(checkpoint, steps=0), "grabcut": _settings(checkpoint, backend="grabcut"),
                "missing": _settings(tmp_path / "absent.pt")}[case]
    out = tmp_path / "out"
    assert main(["online-learn", *_video_args(tiny_dataset), "--settings", settings, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_segment_stage_needs_the_online_model_when_online_learning_is_on(tiny_dataset, checkpoint, tmp_path, capsys):
    from stg.stages import with_online_model

    settings = json.loads(_settings(checkpoint))
    from stg.errors import InputError

    with pytest.raises(InputError, match="--online-model"):
        with_online_model(settings, None)
    with pytest.raises(InputError, match="online-learned model is missing"):
        with_online_model(settings, tmp_path)
    (tmp_path / "model.pt").write_bytes(b"")
    assert with_online_model(settings, tmp_path)["deeplab"]["weights"] == str(tmp_path / "model.pt")
    assert settings["deeplab"]["weights"] == str(checkpoint), "the caller's settings stay as they were"


def test_decoder_only_online_learning_leaves_the_encoder_as_it_was(tiny_dataset, checkpoint, tmp_path):
    """train_encoder false: the encoder's weights and BatchNorm statistics stay the start's, the decoder learns."""
    from stg.train.loop import Recipe, train
    from stg.train.online import OnlineTask
    from stg.train.segmenter import SegmenterSamples

    clip = _dreamed_clip(tiny_dataset)
    start = torch.load(checkpoint, weights_only=True)
    task = OnlineTask(clip, SegmenterSamples(input_size=64), start, "mobilenet_v2", train_encoder=False)
    learned = train(task, Recipe(steps=3, batch_size=4, lr=1e-3, schedule="constant"), tmp_path / "work",
                    progress=False).model.state_dict()
    encoder = [name for name in start if name.startswith("encoder.")]
    assert any(name.endswith("running_mean") for name in encoder)
    for name in encoder:
        assert torch.equal(start[name].float(), learned[name].float()), name
    assert any(not torch.allclose(start[n].float(), learned[n].float()) for n in start
               if n.startswith("decoder.") and start[n].is_floating_point())
