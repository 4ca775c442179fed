"""Stage settings: validated against, and completed from, the config schema.

workflow/schemas/config.schema.yaml is the one home of every stage setting's type, range and default
(`default:`). The config file, its variants and a hand-given `--settings` all pass through here, so an
omitted setting means the same everywhere and a bad one fails with the same message naming its key.
Python code keeps only the checks that relate two settings (e.g. rcnn max_size >= min_size).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import jsonschema
import yaml

from stg.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"

T = TypeVar("T")


@cache
def _schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def load_schema() -> dict[str, Any]:
    """The whole config schema (a copy: callers may change it)."""
    return copy.deepcopy(_schema())


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """A schema node with its local `$ref` (#/$defs/<name>) followed; keywords beside the $ref win."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target = _schema()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target), **{k: v for k, v in node.items() if k != "$ref"}}


def stage_names() -> list[str]:
    """The stages the schema knows (`stages.<stage>`), in schema order."""
    return list(_schema()["$defs"]["stages"]["properties"])


def stage_schema(stage: str) -> dict[str, Any]:
    """The `stages.<stage>` sub-schema, self-contained (it keeps the root's $defs so its $refs resolve)."""
    properties = _schema()["$defs"]["stages"]["properties"]
    if stage not in properties:
        raise ValueError(f"the config schema has no stage '{stage}' (stages: {', '.join(properties)})")
    return {"$defs": _schema()["$defs"], **_resolve(properties[stage])}


def complete(node: dict[str, Any], values: Any) -> Any:
    """`values` with every omitted setting filled from the schema's `default:`, recursively.

    jsonschema validates but never fills defaults; this walks `properties`. An omitted object whose
    properties have defaults is filled too (e.g. a backend's own settings), so the result is the full
    effective settings. Values that are not objects are returned as they are (validation reports them).
    """
    node = _resolve(node)
    if not isinstance(values, dict) or "properties" not in node:
        return copy.deepcopy(values)
    filled = copy.deepcopy(values)
    for name, child in node["properties"].items():
        child = _resolve(child)
        if name not in filled:
            if "default" in child:
                filled[name] = copy.deepcopy(child["default"])
            elif "properties" in child:
                filled[name] = {}
            else:
                continue
        filled[name] = complete(child, filled[name])
    return filled


def error_location(error: jsonschema.ValidationError, prefix: str = "") -> str:
    """Dotted path of the offending key, e.g. 'stages.warp.fb_alpha' ('(top level)' for the root)."""
    parts = ([prefix] if prefix else []) + [str(part) for part in error.absolute_path]
    return ".".join(parts) or "(top level)"


def first_error(validator: jsonschema.protocols.Validator, instance: Any) -> jsonschema.ValidationError | None:
    """The error to report: the shallowest, and among those jsonschema's best match (as for the config file)."""
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(list(e.absolute_path)), str(e.path)))
    return jsonschema.exceptions.best_match(errors) if errors else None


@cache
def _validator(stage: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(stage_schema(stage))


def stage_settings(stage: str, values: Any, source: str | None = None) -> dict[str, Any]:
    """A stage's settings validated against `stages.<stage>` and completed with the schema's defaults.

    An error names the key as the config file's validation does ('stages.warp.fb_alpha'); with `source`
    (e.g. '--settings') it reads '<source>: key '<key>'', the config file's form.
    """
    error = first_error(_validator(stage), values)
    if error is not None:
        location = error_location(error, f"stages.{stage}")
        raise InputError(location if source is None else f"{source}: key '{location}'", error.message)
    return complete(stage_schema(stage), values)


def validate_section(ref: str, values: Any, where: str) -> None:
    """Validate a config section other than a stage (e.g. '#/$defs/segmenter_training'); errors name the key."""
    validator = jsonschema.Draft202012Validator({"$defs": _schema()["$defs"], "$ref": ref})
    error = first_error(validator, values)
    if error is not None:
        location = ".".join(str(part) for part in error.absolute_path)
        raise InputError(f"{where}{'.' + location if location else ''}'", error.message)


def defaults(stage: str) -> dict[str, Any]:
    """Every setting of a stage at its default."""
    return complete(stage_schema(stage), {})


def backend_has_setting(stage: str, backend: str, name: str) -> bool:
    """Whether the backend's own settings (stages.<stage>.<backend>) include `name` (e.g. batch_size)."""
    node = _resolve(stage_schema(stage)["properties"].get(backend, {}))
    return name in node.get("properties", {})


class StageSettings:
    """Mixin for a stage's typed settings (a dataclass): `from_dict` builds it from a settings dict.

    The dict is validated and completed by the schema first, so the dataclass carries no defaults and
    no range checks of its own; settings that are not its fields (backend, device, ...) are ignored.
    """

    stage: ClassVar[str]

    @classmethod
    def from_dict(cls: type[T], values: Mapping[str, Any]) -> T:
        complete_values = stage_settings(cls.stage, dict(values))
        return cls(**{f.name: complete_values[f.name] for f in fields(cls) if f.init})
