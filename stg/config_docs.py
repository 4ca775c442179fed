"""config/README.md from the config schema: every key with its type, default and description.

The schema (workflow/schemas/config.schema.yaml) is the one home of each setting, so the page is generated,
never edited: `python -m stg.config_docs > config/README.md` (a test checks that the file is up to date).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from stg.settings import _resolve, load_schema

HEADER = """# Configuration

`config/config.yaml` is the workflow's configuration; `--configfile` files and `--config` values are layered on
top of it (Snakemake merges nested keys). It is validated against `workflow/schemas/config.schema.yaml` when the
workflow starts: an unknown key or a wrong type is an error naming the key. A stage setting left out takes the
default below, everywhere (config, variants, a stage's `--settings` by hand). A variant (`variants.<name>.stages`)
overrides any of `stages:` for the runs `results/<dataset>_<split>__<name>`.

This page is generated from the schema (`python -m stg.config_docs > config/README.md`); do not edit it.

| key | type | default | description |
|---|---|---|---|
"""


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " | ".join("null" if v is None else str(v) for v in node["enum"])
    kind = node.get("type", "object" if "properties" in node else "")
    text = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if "pattern" in node:
        text += f" (`{node['pattern']}`)"
    bounds = [f"{word} {node[name]}" for name, word in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                         ("maximum", "<="), ("exclusiveMaximum", "<"))
              if name in node]
    return ", ".join([text, *bounds]) if bounds else text


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def rows(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, str, str, str]]:
    """(key, type, default, description) of `node` and, depth first, of everything under it."""
    node = _resolve(node)
    if prefix:
        default = json.dumps(node["default"]) if "default" in node else ""
        yield prefix, _type(node), default, node.get("description", "")
    for name, child in node.get("properties", {}).items():
        yield from rows(child, f"{prefix}.{name}" if prefix else name)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from rows(extra, f"{prefix}.<name>")


def render() -> str:
    lines = [f"| `{key}` | {_cell(kind)} | {_cell(default) and f'`{_cell(default)}`'} | {_cell(text)} |"
             for key, kind, default, text in rows(load_schema(), "")]
    return HEADER + "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
