"""The registry of known weights: shipped files intact, listing, user paths, clear errors for missing/altered files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import stg.weights_registry as registry
from stg.errors import InputError
from stg.weights_registry import (
    KNOWN,
    SHIPPED,
    file_sha256,
    format_weights_table,
    known_weights,
    list_weights,
    resolve_known,
)

REPO = Path(__file__).resolve().parents[1]


def test_every_entry_is_complete_and_ids_are_unique():
    assert len({entry.id for entry in KNOWN}) == len(KNOWN)
    for entry in KNOWN:
        assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0
        assert entry.licence and entry.source and entry.setting.startswith(("stages.", "training.")) and entry.used_by
    with pytest.raises(KeyError, match="unknown weights id"):
        known_weights("resnet9000")


def test_shipped_files_match_their_hashes_and_are_package_data():
    shipped = [entry for entry in KNOWN if entry.home == SHIPPED]
    assert shipped
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["stg"]
    patterns = [f"stg/{p}" for p in package_data]
    for entry in shipped:
        path = registry.SHIPPED_DIR / entry.file
        assert file_sha256(path) == entry.sha256, entry.file   # the registry's hash, not one written here
        assert any(path.match(pattern) for pattern in patterns)
    for path in registry.SHIPPED_DIR.iterdir():   # e.g. a model's training record beside it ships too
        assert any(path.match(pattern) for pattern in patterns), path.name
    notice = (registry.SHIPPED_DIR / "README.md").read_text().splitlines()
    for entry in shipped:   # one notice row per file; a hash it states must be the registry's (else it defers)
        rows = [line for line in notice if line.startswith(f"| `{entry.file}` |")]
        assert len(rows) == 1, entry.file
        stated = rows[0].rstrip(" |").rsplit("|", 1)[-1].strip()
        assert stated in (f"`{entry.sha256}`", "see `stg weights list`"), (entry.file, stated)
    assert (registry.SHIPPED_DIR / "LICENSE-Apache-2.0.txt").is_file()


def test_list_reports_shipped_and_wheel_files():
    rows = {row["id"]: row for row in list_weights()}
    assert set(rows) == {entry.id for entry in KNOWN}
    yolox = rows["yolox_nano_coco"]
    assert yolox["status"] == "ok" and yolox["where"] == SHIPPED
    assert yolox["path"] == str(registry.SHIPPED_DIR / "yolox_nano_coco.onnx")
    mobilenet = rows["mobilenet_v2_imagenet_deepsort"]
    assert mobilenet["where"] == registry.DEEPSORT_WHEEL and mobilenet["status"] in ("ok", "altered", "missing")
    table = format_weights_table()
    assert table.splitlines()[0].split() == ["id", "status", "found", "in", "path"]
    assert all(entry.id in table and entry.sha256 in table for entry in KNOWN)


def test_list_reports_a_configured_path_as_a_user_file(tmp_path):
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"x")
    config = {"stages": {"detect": {"yolox": {"weights": str(mine)}}, "graph": {"mobilenet_v2": {"weights": None}}}}
    rows = {row["id"]: row for row in list_weights(config)}
    assert rows["yolox_nano_coco"]["where"] == "setting stages.detect.yolox.weights"
    assert rows["yolox_nano_coco"]["status"] == "user file" and rows["yolox_nano_coco"]["path"] == str(mine)
    assert rows["mobilenet_v2_imagenet_deepsort"]["where"] == registry.DEEPSORT_WHEEL
    config["stages"]["detect"]["yolox"]["weights"] = str(tmp_path / "gone.onnx")
    assert {row["id"]: row for row in list_weights(config)}["yolox_nano_coco"]["status"] == "missing"


def test_altered_and_missing_shipped_files_are_reported_and_refused(tmp_path, monkeypatch):
    entry = known_weights("yolox_nano_coco")
    (tmp_path / entry.file).write_bytes((registry.SHIPPED_DIR / entry.file).read_bytes() + b"\0")
    monkeypatch.setattr(registry, "SHIPPED_DIR", tmp_path)
    row = {r["id"]: r for r in list_weights()}["yolox_nano_coco"]
    assert row["status"] == "altered" and row["found_sha256"] != entry.sha256
    assert "the file was changed" in format_weights_table()
    with pytest.raises(InputError, match="altered") as error:
        resolve_known("yolox_nano_coco", None)
    assert error.value.where == entry.setting and entry.sha256 in error.value.problem
    (tmp_path / entry.file).unlink()
    assert {r["id"]: r for r in list_weights()}["yolox_nano_coco"]["status"] == "missing"
    with pytest.raises(InputError, match="missing") as error:
        resolve_known("yolox_nano_coco", None, "stages.other.weights")
    assert error.value.where == "stages.other.weights" and entry.sha256 in error.value.problem


def test_a_user_path_is_used_as_is_and_must_exist(tmp_path):
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"anything")
    assert resolve_known("yolox_nano_coco", str(mine)) == mine
    with pytest.raises(InputError, match="weights file is missing"):
        resolve_known("yolox_nano_coco", tmp_path / "gone.onnx")


def test_cli_lists_the_known_files(capsys):
    from stg.cli import main

    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == format_weights_table(list_weights()).strip()
    assert "yolox_nano_coco" in out.splitlines()[1] and " ok " in out.splitlines()[1]


def test_cli_reports_a_configured_user_file_from_layered_configs(tmp_path, monkeypatch, capsys):
    import shutil

    from stg.cli import main

    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"x")
    (tmp_path / "override.yaml").write_text(f"stages:\n  detect:\n    yolox:\n      weights: {mine}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["weights", "list", "--configfile", "override.yaml"]) == 0
    yolox = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("yolox_nano_coco "))
    assert yolox.split()[1:] == ["user", "file", "setting", "stages.detect.yolox.weights", str(mine)]
    (tmp_path / "bad.yaml").write_text("stages:\n  detect:\n    yolox:\n      wieghts: x\n")
    assert main(["weights", "list", "--configfile", "bad.yaml"]) == 2
    assert "stages.detect.yolox" in capsys.readouterr().err
    assert main(["weights", "list", "--configfile", "gone.yaml"]) == 2
    assert "gone.yaml: config file is missing" in capsys.readouterr().err
