"""The official toolkit's outputs: global and per-sequence CSVs, metrics.json and the printed global table."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path

from stg.atomic import write_text_atomic

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")


def _format_value(value: float | None) -> str:
    """pandas' to_csv(float_format="%.3f"): NaN becomes an empty field."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _csv_text(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(header))
    writer.writerows(list(row) for row in rows)
    return buffer.getvalue()


def global_csv(metrics: dict) -> str:
    """Text of global_results-<split>.csv (official columns, one row)."""
    values = metrics["global"]
    return _csv_text(GLOBAL_COLUMNS, [[_format_value(values[key]) for key in GLOBAL_COLUMNS]])


def sequence_csv(metrics: dict) -> str:
    """Text of per-sequence_results-<split>.csv: one row per object, in evaluation order."""
    rows = [[name, _format_value(row["J-Mean"]), _format_value(row["F-Mean"])]
            for name, row in metrics["objects"].items()]
    return _csv_text(SEQUENCE_COLUMNS, rows)


def _json_safe(value):
    """NaN/inf become null so that metrics.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def write_outputs(metrics: dict, out_dir: Path, split: str) -> None:
    """global_results-<split>.csv, per-sequence_results-<split>.csv and metrics.json (unrounded)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / f"global_results-{split}.csv", global_csv(metrics))
    write_text_atomic(out_dir / f"per-sequence_results-{split}.csv", sequence_csv(metrics))
    document = {"split": split, "global": metrics["global"], "objects": metrics["objects"]}
    if "per_frame" in metrics:
        document["per_frame"] = metrics["per_frame"]
    write_text_atomic(out_dir / "metrics.json", json.dumps(_json_safe(document), indent=1) + "\n")


def format_global_table(metrics: dict, split: str | None = None) -> str:
    """The global table as right-aligned text, like the official tool's printout."""
    values = metrics["global"]
    cells = ["nan" if math.isnan(values[key]) else f"{values[key]:.6f}" for key in GLOBAL_COLUMNS]
    widths = [max(len(key), len(cell)) for key, cell in zip(GLOBAL_COLUMNS, cells, strict=True)]
    header = " ".join(key.rjust(width) for key, width in zip(GLOBAL_COLUMNS, widths, strict=True))
    row = " ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))
    title = f"Global results for {split}" if split else "Global results"
    return f"{'-' * 27} {title} {'-' * 27}\n{header}\n{row}"
