"""mmdet backend with a model built from mmdet's own Mask R-CNN config, randomly initialised and saved.

Skipped when mmdet is not installed; CI installs it with .ci/install_mmdet.sh.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

mmdet = pytest.importorskip("mmdet", reason="mmdet is not installed (bash .ci/install_mmdet.sh installs the extra)")

from stg.cli import main  # noqa: E402
from stg.datasets import open_dataset, read_frame  # noqa: E402
from stg.detect.ops import box_iou, filter_detections  # noqa: E402
from stg.store import open_store, read_ragged  # noqa: E402
from stg.weights import weights_identity  # noqa: E402

BASE_CONFIG = Path(mmdet.__file__).parent / ".mim" / "configs" / "mask_rcnn" / "mask-rcnn_r50_fpn_1x_coco.py"
# mmdet's Mask R-CNN with 3 classes (so merging matters), frames kept at 214x120 and few proposals: quick on CPU.
DERIVED = """
_base_ = {base!r}
model = dict(
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=50), rcnn=dict(score_thr=0.05, max_per_img=30)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(214, 120), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
"""


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    from mmdet.apis import init_detector

    if not BASE_CONFIG.is_file():
        pytest.skip(f"mmdet's Mask R-CNN config is not at {BASE_CONFIG}")
    folder = tmp_path_factory.mktemp("mmdet")
    config = folder / "mask-rcnn_r50_fpn_3class_small.py"
    config.write_text(DERIVED.format(base=str(BASE_CONFIG)))
    torch.manual_seed(0)
    model = init_detector(str(config), None, device="cpu")
    weights = folder / "mask_rcnn_random.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": ["a", "b", "c"]}}}, weights)
    return config, weights, model


@pytest.fixture(scope="module")
def mmdet_chain(tiny_dataset, tmp_path_factory, model_files):
    config, weights, _ = model_files
    out = tmp_path_factory.mktemp("detect-mmdet")
    video = open_dataset(tiny_dataset, "davis2017", "val").video_names()[0]
    common = ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", video]
    assert main(["flow", *common, "--out", str(out / "flow.zarr")]) == 0
    assert main(["warp", *common, "--flow", str(out / "flow.zarr"), "--out", str(out / "warp.zarr")]) == 0
    settings = {"backend": "mmdet", "mmdet": {"config": str(config), "weights": str(weights)}}
    assert main(["detect", *common, "--warp", str(out / "warp.zarr"), "--settings", json.dumps(settings),
                 "--device", "cpu", "--batch-size", "3", "--out", str(out / "detect.zarr")]) == 0
    return tiny_dataset, video, common, out


def test_store_and_identity(mmdet_chain, model_files):
    config, weights, _ = model_files
    _, _, _, out = mmdet_chain
    store = open_store(out / "detect.zarr", "detect")
    assert int(store["offsets"][-1]) > 0
    assert "masks" not in store.array_keys()
    backend = store.attrs["backend"]
    assert backend["backend"] == "mmdet" and backend["score_thresh"] == 0.05 and backend["nms_thresh"] == 0.6
    assert backend["weights"] == weights_identity(weights) and backend["config"] == weights_identity(config)


def test_classes_merged_and_thresholds_applied(mmdet_chain):
    _, _, _, out = mmdet_chain
    store = open_store(out / "detect.zarr", "detect")
    for t in range(store["offsets"].shape[0] - 1):
        boxes, scores = read_ragged(store, "boxes", t), read_ragged(store, "scores", t)
        assert (scores >= 0.05).all() and np.all(np.diff(scores) <= 0)
        iou = box_iou(boxes, boxes)
        np.fill_diagonal(iou, 0)
        assert iou.max(initial=0) <= 0.6 + 1e-6


def test_matches_mmdet_inference_detector(mmdet_chain, model_files):
    from mmdet.apis import inference_detector

    root, video, _, out = mmdet_chain
    _, _, model = model_files
    store = open_store(out / "detect.zarr", "detect")
    frame = read_frame(open_dataset(root, "davis2017", "val").video(video).frame_paths[4])
    raw = inference_detector(model.eval(), np.ascontiguousarray(frame[..., ::-1])).pred_instances
    boxes, scores, labels = raw.bboxes.numpy(), raw.scores.numpy(), raw.labels.numpy()
    assert len(np.unique(labels)) > 1  # the model really predicts several classes ...
    keep = filter_detections(boxes, scores, 0.05, 0.6)
    assert len(keep) < len(boxes)  # ... whose overlapping boxes the class-agnostic NMS merges
    np.testing.assert_allclose(read_ragged(store, "boxes", 4), boxes[keep], atol=1e-2)
    np.testing.assert_allclose(read_ragged(store, "scores", 4), scores[keep], atol=1e-4)


def test_wrong_checkpoint_fails_at_start(mmdet_chain, model_files, tmp_path, capsys):
    from stg.detect.rcnn import build_model

    config, _, _ = model_files
    _, _, common, out = mmdet_chain
    wrong = tmp_path / "torchvision_maskrcnn.pth"
    torch.save(build_model().state_dict(), wrong)
    settings = {"backend": "mmdet", "mmdet": {"config": str(config), "weights": str(wrong)}}
    code = main(["detect", *common, "--warp", str(out / "warp.zarr"), "--settings", json.dumps(settings),
                 "--device", "cpu", "--out", str(tmp_path / "d.zarr")])
    assert code == 2
    err = capsys.readouterr().err
    assert "torchvision_maskrcnn.pth" in err and "does not fit" in err and "stages.detect.mmdet.weights" in err
    assert not (tmp_path / "d.zarr").exists()
