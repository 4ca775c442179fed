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

from stg.errors import InputError
from stg.settings import stage_schema, stage_settings


@dataclass(frozen=True)
class Backend:
    """One registered backend: where its class lives, and whether it takes the stage's `device` (torch)."""

    target: str  # "package.module:Class"
    device: bool = False

    def load(self) -> Any:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


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
    values = stage_settings(stage, dict(settings))
    options = dict(values[name])
    entry = registry[name]
    if entry.device:
        options["device"] = values["device"] if device is None else device
    return entry.load()(**options)
