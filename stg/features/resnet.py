"""ResNet features as in the paper: ResNet-101 last layer for nodes, a ResNet-50 stage for key maps.

Weights come from configured checkpoints (e.g. RVOS-initialised / fine-tuned ones) or torchvision's
cache; nothing downloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchvision

from stg.devices import resolve_device
from stg.features.base import imagenet_batch
from stg.weights import load_state_dict_checked, resolve_weights, weights_identity

_SETTINGS = "stages.graph.resnet"
DEPTHS = {18: "resnet18-f37072fd.pth", 34: "resnet34-b627a593.pth", 50: "resnet50-0676ba61.pth",
          101: "resnet101-63fe2227.pth", 152: "resnet152-394f9c45.pth"}
# Key layers (the schema's key_layer enum): layer3 = conv4_x ("stage 4" counting the stem as stage 1;
# stride 16), layer4 = conv5_x (stride 32). The schema's node_depth / key_depth enums are DEPTHS' keys.


def _build(depth: int, weights: str | None, setting: str) -> tuple[torchvision.models.ResNet, dict[str, Any]]:
    path = resolve_weights(weights, DEPTHS[depth], setting)
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    load_state_dict_checked(model, path, setting)
    return model.eval(), weights_identity(path)


class ResNetFeatures:
    """Nodes: global-pooled last layer of ResNet-`node_depth`; keys: `key_layer` of ResNet-`key_depth`."""

    name = "resnet"

    def __init__(self, node_weights: str | None = None, key_weights: str | None = None, node_depth: int = 101,
                 key_depth: int = 50, key_layer: str = "layer3", node_size: int = 224, device: str = "auto",
                 batch_size: int = 16) -> None:
        self.device = resolve_device(device, "stages.graph.device")
        self.node_size, self.key_layer, self.batch_size = node_size, key_layer, batch_size
        node, self._node_weights = _build(node_depth, node_weights, f"{_SETTINGS}.node_weights")
        key, self._key_weights = _build(key_depth, key_weights, f"{_SETTINGS}.key_weights")
        self.node_depth, self.key_depth = node_depth, key_depth
        self.node_net = torch.nn.Sequential(*list(node.children())[:-1]).to(self.device)  # up to avgpool
        stages = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        keep = stages[: stages.index(key_layer) + 1]
        self.key_net = torch.nn.Sequential(*[getattr(key, name) for name in keep]).to(self.device)
        self.key_stride = 16 if key_layer == "layer3" else 32

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "node_model": f"resnet{self.node_depth}", "key_model": f"resnet{self.key_depth}",
                "node_layer": "avgpool", "key_layer": self.key_layer, "node_size": self.node_size,
                "node_weights": self._node_weights, "key_weights": self._key_weights}

    @torch.inference_mode()
    def node_features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(crops), self.batch_size):
            batch = imagenet_batch(crops[start:start + self.batch_size], (self.node_size, self.node_size), self.device)
            out.append(self.node_net(batch).flatten(1).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 2048), dtype=np.float32)

    @torch.inference_mode()
    def key_maps(self, crops: np.ndarray) -> torch.Tensor:
        return self.key_net(imagenet_batch(list(crops), None, self.device)).float()
