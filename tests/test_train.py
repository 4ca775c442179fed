"""Training: the shared loop lowers a loss, resumes exactly, and the segmenter stage writes a loadable model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stg.errors import InputError
from stg.train.augment import deform_prior, jitter_box, mask_box
from stg.train.data import load_training_split
from stg.train.loop import Recipe, train
from stg.train.segmenter import SegmenterSamples, SegmenterTask, make_sample
from stg.train.stage import CURVE_FILE, MODEL_FILE, RECORD_FILE, train_segmenter

SIZE = 64  # network input for tests: small enough for a few CPU steps per second


@pytest.fixture(scope="module")
def videos(tiny_dataset):
    return load_training_split(tiny_dataset, "davis2017", "val")


def small_task(videos, **kwargs) -> SegmenterTask:
    return SegmenterTask(videos, SegmenterSamples(input_size=SIZE), encoder="mobilenet_v2",
                         encoder_init="imagenet-deepsort", **kwargs)


def test_samples_are_crops_of_the_object(videos):
    video = videos[0]
    frame, obj = video.samples()[0]
    inputs, target = make_sample(video, frame, obj, SegmenterSamples(input_size=SIZE), None)
    assert inputs.shape == (4, SIZE, SIZE) and target.shape == (SIZE, SIZE)
    assert 0 < target.mean() < 1, "the crop around Q's box holds object and background"
    assert inputs[3].max() <= 1.0 and inputs[3].min() >= 0.0
    rng = np.random.default_rng(0)
    again = make_sample(video, frame, obj, SegmenterSamples(input_size=SIZE), np.random.default_rng(0))
    assert np.array_equal(again[0], make_sample(video, frame, obj, SegmenterSamples(input_size=SIZE), rng)[0])


def test_deformations_change_the_prior_but_keep_it_a_probability():
    prior = np.zeros((80, 120), np.float32)
    prior[20:60, 30:90] = 1.0
    changed = [deform_prior(prior, np.random.default_rng(seed), empty_probability=0.0) for seed in range(8)]
    assert all(c.min() >= 0.0 and c.max() <= 1.0 for c in changed)
    assert sum(not np.array_equal(c, prior) for c in changed) >= 6
    box = jitter_box(mask_box(prior), np.random.default_rng(1), shift=0.1, scale=0.15)
    assert abs((box[0] + box[2]) / 2 - 60) <= 6.1 and abs((box[1] + box[3]) / 2 - 40) <= 4.1


def test_clean_and_deform_probabilities_set_how_often_q_is_kept():
    """clean_probability keeps Q as it is (the network learns to keep a good Q); deform_probability 0: no change."""
    prior = np.zeros((80, 120), np.float32)
    prior[20:60, 30:90] = 1.0
    kept = [np.array_equal(deform_prior(prior, np.random.default_rng(seed), 0.0, clean_probability=0.3), prior)
            for seed in range(400)]
    # kept = the clean 30% plus the deformed ones whose four 0.5 draws all failed (0.7 x 1/16)
    assert 0.3 < np.mean(kept) < 0.45, np.mean(kept)
    assert all(np.array_equal(deform_prior(prior, np.random.default_rng(seed), 0.0, deform_probability=0.0), prior)
               for seed in range(20))
    assert np.array_equal(deform_prior(prior, np.random.default_rng(0), 0.0, clean_probability=1.0), prior)


def test_a_few_steps_lower_the_loss(videos, tmp_path):
    recipe = Recipe(steps=30, batch_size=4, lr=1e-3, eval_every=10, warmup_steps=0, seed=0)
    result = train(small_task(videos), recipe, tmp_path / "work", progress=False)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 3
    assert losses[-1] < losses[0] * 0.9, losses


def test_resume_after_interruption_equals_an_uninterrupted_run(videos, tmp_path):
    torch.set_num_threads(1)  # the same reduction order in both runs
    recipe = Recipe(steps=6, batch_size=2, lr=1e-3, eval_every=3, checkpoint_every=2, seed=5)
    whole = train(small_task(videos), recipe, tmp_path / "whole", progress=False)
    first = train(small_task(videos), recipe, tmp_path / "parts", stop_after=4, progress=False)
    assert first.steps == 4 and (tmp_path / "parts" / "checkpoint.pt").is_file()
    rest = train(small_task(videos), recipe, tmp_path / "parts", progress=False)
    assert rest.resumed_from == 4 and rest.steps == 6
    expected, actual = whole.model.state_dict(), rest.model.state_dict()
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    assert [h["loss"] for h in rest.history] == pytest.approx([h["loss"] for h in whole.history], rel=1e-6)


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(videos, tmp_path):
    recipe = Recipe(steps=2, batch_size=2, lr=1e-3)
    work = tmp_path / "work"
    work.mkdir()
    (work / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="checkpoint.pt: training checkpoint cannot be read"):
        train(small_task(videos), recipe, work, progress=False)
    torch.save({"task": "detector", "step": 1}, work / "checkpoint.pt")
    with pytest.raises(InputError, match="is of 'detector', not 'segmenter'"):
        train(small_task(videos), recipe, work, progress=False)


def test_stage_writes_a_model_loadable_with_weights_only(tiny_dataset, tmp_path):
    from stg.segment.deeplab import build_deeplab
    from stg.weights import load_state_dict_checked

    settings = {"input_size": SIZE, "steps": 3, "batch_size": 2, "lr": 1e-3, "seed": 0, "warmup_steps": 0}
    data = [{"root": str(tiny_dataset), "layout": "davis2017", "split": "val"}]
    out = tmp_path / "models" / "segmenter" / "abc"
    train_segmenter(settings, data, out, tmp_path / "work", key="abc", device="cpu")
    assert sorted(p.name for p in out.iterdir()) == sorted([MODEL_FILE, RECORD_FILE, CURVE_FILE])
    state = torch.load(out / MODEL_FILE, weights_only=True)
    assert all(v.dtype in (torch.float16, torch.int64) for v in state.values())
    load_state_dict_checked(build_deeplab("mobilenet_v2"), out / MODEL_FILE, "test")
    record = json.loads((out / RECORD_FILE).read_text())
    assert record["steps"] == 3 and record["key"] == "abc"
    assert record["data"][0]["videos"] and all(n > 0 for n in record["data"][0]["videos"].values())
    assert {"torch", "python"} <= set(record["packages"]) and record["wall_seconds"] > 0
    assert "commit" in record
    assert not (tmp_path / "work").exists(), "the resumable work folder is removed once the model is written"


def test_missing_split_or_frames_fail_and_leave_nothing(tiny_dataset, tmp_path):
    out = tmp_path / "model"
    settings = {"input_size": SIZE, "steps": 1, "batch_size": 1, "lr": 1e-3, "warmup_steps": 0}
    with pytest.raises(InputError, match="nosuch"):
        train_segmenter(settings, [{"root": str(tiny_dataset), "layout": "davis2017", "split": "nosuch"}], out,
                        tmp_path / "work", device="cpu")
    assert not out.exists()
    empty = tmp_path / "empty"
    (empty / "ImageSets" / "2017").mkdir(parents=True)
    (empty / "ImageSets" / "2017" / "val.txt").write_text("ghost\n")
    with pytest.raises(InputError):
        train_segmenter(settings, [{"root": str(empty), "layout": "davis2017", "split": "val"}], out,
                        tmp_path / "work", device="cpu")
    assert not out.exists()


def test_flow_store_of_another_video_is_refused(tiny_dataset, tmp_path):
    from stg.datasets import open_dataset
    from stg.flow.dis import DisFlow
    from stg.flow.stage import compute_flow_store

    dataset = open_dataset(tiny_dataset, "davis2017", "val")
    first, second = dataset.video_names()[:2]
    flow = tmp_path / "flow.zarr"
    compute_flow_store(dataset.video(first), DisFlow(preset="ultrafast"), flow, {})
    with pytest.raises(Exception, match=str(flow)):
        load_training_split(tiny_dataset, "davis2017", "val", {first: flow, second: flow})
    assert Path(flow).is_dir()
