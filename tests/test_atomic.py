"""stg.atomic: a target is either absent, old or complete, never partial, and failures leave nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import stg.atomic as atomic
from stg.atomic import atomic_directory, atomic_file, write_text_atomic


def tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def write_old(path: Path) -> None:
    path.mkdir()
    (path / "old.txt").write_text("old")
    (path / "sub").mkdir()
    (path / "sub" / "kept.txt").write_text("old too")


# ---------------------------------------------------------------- folders


def test_directory_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "out"
    with pytest.raises(RuntimeError, match="killed"), atomic_directory(target) as temporary:
        (temporary / "half.txt").write_text("half")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list((tmp_path / "deep").iterdir()) == []


def test_directory_failure_keeps_the_old_target(tmp_path: Path) -> None:
    target = tmp_path / "out"
    write_old(target)
    with pytest.raises(KeyboardInterrupt), atomic_directory(target) as temporary:
        (temporary / "new.txt").write_text("new")
        raise KeyboardInterrupt
    assert tree(target) == {"old.txt": "old", "sub/kept.txt": "old too"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_directory_replaces_an_existing_target_and_never_exposes_a_partial_one(tmp_path: Path) -> None:
    target = tmp_path / "out"
    write_old(target)
    with atomic_directory(target) as temporary:
        assert temporary.parent == target.parent and temporary != target
        assert list(temporary.iterdir()) == []
        (temporary / "a.txt").write_text("a")
        assert tree(target) == {"old.txt": "old", "sub/kept.txt": "old too"}  # still the old one mid-write
        (temporary / "b.txt").write_text("b")
    assert tree(target) == {"a.txt": "a", "b.txt": "b"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_directory_new_target_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_directory(target) as temporary:
        (temporary / "a.txt").write_text("a")
        assert not target.exists()
    assert tree(target) == {"a.txt": "a"}


def test_failed_swap_restores_the_old_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out"
    write_old(target)
    real_replace = os.replace
    calls = []

    def failing_second_rename(source: Path, destination: Path) -> None:
        calls.append((Path(source).name, Path(destination).name))
        if len(calls) == 2:  # the old target is already aside: the new one fails to move in
            raise OSError("rename failed (simulated)")
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", failing_second_rename)
    with pytest.raises(OSError, match="simulated"), atomic_directory(target) as temporary:
        (temporary / "new.txt").write_text("new")
    assert len(calls) == 3  # aside, failed swap, back
    assert tree(target) == {"old.txt": "old", "sub/kept.txt": "old too"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# ---------------------------------------------------------------- files


def test_file_failure_leaves_nothing_behind_and_keeps_the_old_file(tmp_path: Path) -> None:
    fresh, old = tmp_path / "fresh.csv", tmp_path / "old.csv"
    old.write_text("old\n")
    for target in (fresh, old):
        with pytest.raises(RuntimeError), atomic_file(target) as stream:
            stream.write("half")
            raise RuntimeError("killed")
    assert not fresh.exists()
    assert old.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]


def test_file_replaces_an_existing_file_and_never_exposes_a_partial_one(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with atomic_file(target) as stream:
        stream.write("new, ")
        stream.flush()
        assert target.read_text() == "old"
        stream.write("complete\r\n")
    assert target.read_bytes() == b"new, complete\r\n"  # newlines are written as given
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_binary_file_and_text_helper(tmp_path: Path) -> None:
    with atomic_file(tmp_path / "a.bin", binary=True) as stream:
        stream.write(b"\x00\xff")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\xff"
    write_text_atomic(tmp_path / "deep" / "b.txt", "é\n")
    assert (tmp_path / "deep" / "b.txt").read_text(encoding="utf-8") == "é\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.bin", "b.txt", "deep"]
