"""Backend registries, one style for every stage: a dict name -> `Backend` entry, built by `build_backend`.

An entry names its class as 'module:Class', imported only when that backend is built, so asking
which backends exist (the CLI, Snakemake's GPU test) never imports torch or OpenCV models. The
class's keyword arguments are the backend's settings (`stages.<stage>.<backend>` in the config
schema), plus `device` for backends that run torch on the stage's device.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stg.devices import uses_gpu
from stg.errors import InputError
from stg.settings import stage_schema, stage_settings


@dataclass(frozen=True)
class Backend:
    """One registered backend: where its class lives, and whether it takes the stage's `device` (torch).

    `build` and `gpu` ('module:function') replace the defaults for backends that are not one class on
    one torch device: `build(settings, device)` constructs it from the stage's whole settings (e.g. a
    union of other backends), `gpu(values, device, setting)` says whether its job holds a GPU (e.g. an
    ONNX Runtime model: only with the CUDA provider).
    """

    target: str  # "package.module:Class"
    device: bool = False
    build: str | None = None
    gpu: str | None = None

    def load(self, target: str | None = None) -> Any:
        module, _, name = (target or self.target).partition(":")
        return getattr(importlib.import_module(module), name)

    def holds_gpu(self, values: Mapping[str, Any], device: str, setting: str) -> bool:
        """Whether a job with the stage's completed settings `values` and this device spec holds a GPU."""
        if self.gpu is not None:
            return bool(self.load(self.gpu)(values, device, setting))
        return self.device and uses_gpu(device, setting)


def chosen_backend(stage: str, settings: Mapping[str, Any], registry: Mapping[str, Backend], kind: str) -> str:
    """The backend a stage's settings choose (the schema's default when omitted), or an error naming it."""
    name = settings["backend"] if "backend" in settings else stage_schema(stage)["properties"]["backend"]["default"]
    if name not in registry:
        raise InputError(f"stages.{stage}.backend",
                         f"unknown {kind} backend '{name}' (expected one of {', '.join(registry)})")
    return name


def build_backend(stage: str, kind: str, registry: Mapping[str, Backend], settings: Mapping[str, Any],
                  device: str | None = None) -> Any:
    """Construct the backend that `settings` (a stage's settings) chooses, from its validated, completed settings.

    `device` overrides the settings' own `device` (the CLI's --device). Everything that can fail on
    configuration (settings, device, weights) fails here, at job start, before any input is read.
    """
    name = chosen_backend(stage, settings, registry, kind)
    entry = registry[name]
    if entry.build is not None:
        return entry.load(entry.build)(settings, device)
    values = stage_settings(stage, dict(settings))
    options = dict(values[name])
    if entry.device:
        options["device"] = values["device"] if device is None else device
    return entry.load()(**options)
