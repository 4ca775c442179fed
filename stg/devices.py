"""Turn the `device: auto|cpu|cuda[:N]` setting into a torch device, failing early and clearly.

torch is imported inside the functions so that importing `stg` (the CLI, Snakemake rule
files) stays light.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from stg.errors import InputError

if TYPE_CHECKING:
    import torch

_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")
_ALLOWED = "auto, cpu, cuda or cuda:N"


def _parse(spec: str, setting: str) -> tuple[str, int | None]:
    """Syntax check only, so Snakemake can ask `uses_gpu` without touching CUDA for cpu/cuda."""
    if not isinstance(spec, str):
        raise InputError(setting, f"device must be a string ({_ALLOWED}), got {spec!r}")
    match = _SPEC.match(spec)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise InputError(setting, f"unknown device {spec!r}; use {_ALLOWED}")
    kind, index = match.group(1), match.group(2)
    return kind, None if index is None else int(index)


def resolve_device(spec: str, setting: str = "device") -> torch.device:
    """The torch device for a setting; asking for a GPU that is not there is an error, not a silent CPU run."""
    import torch

    kind, index = _parse(spec, setting)
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if not torch.cuda.is_available():
        cuda_build = torch.version.cuda or "none (CPU-only build)"
        raise InputError(
            setting,
            f"device {spec!r} asks for CUDA, but torch sees no usable CUDA device "
            f"(torch {torch.__version__}, CUDA build {cuda_build}); use 'cpu' or 'auto'",
        )
    if index is None:
        return torch.device("cuda")
    count = torch.cuda.device_count()
    if index >= count:
        raise InputError(setting, f"device {spec!r} does not exist: torch sees {count} CUDA device(s) (cuda:0..)")
    return torch.device("cuda", index)


def uses_gpu(spec: str, setting: str = "device") -> bool:
    """Whether a job with this setting will hold a GPU, for Snakemake's `resources: gpu=1`."""
    kind, _ = _parse(spec, setting)
    if kind == "cuda":
        return True
    if kind == "cpu":
        return False
    import torch

    return bool(torch.cuda.is_available())
