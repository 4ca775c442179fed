"""Faults a long run meets: damaged cached stores, jobs killed mid-write, unusable output locations.

Damaged stores are made from real ones (the flow stage on the synthetic data) and read by a real reader (`stg warp`
through the CLI, or open_store + read_ragged); each must stop with one line naming the store, the array and the
frames, never read a lost chunk as zeros or show a codec traceback.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

import stg.store_verify
from stg.atomic import _host, atomic_directory
from stg.cli import main
from stg.datasets import open_dataset, read_annotation
from stg.errors import DamagedStoreError
from stg.store import RECORD_KEY, build_store, open_store, read_array, read_ragged


@pytest.fixture(scope="module")
def flow_store(tiny_dataset, tmp_path_factory):
    """A finished flow store of the first synthetic video, and the arguments naming that video."""
    out = tmp_path_factory.mktemp("faults")
    video = open_dataset(tiny_dataset, "davis2017", "val").video_names()[0]
    common = ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", video]
    assert main(["flow", *common, "--out", str(out / "flow.zarr")]) == 0
    frames = open_dataset(tiny_dataset, "davis2017", "val").video(video).frame_names
    return out / "flow.zarr", common, frames


def copy_of(store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "flow.zarr"
    shutil.copytree(store, copy)
    return copy


def without_record(store: Path) -> None:
    """Make store look like one written before stores recorded their chunks."""
    del zarr.open_group(str(store), mode="r+").attrs[RECORD_KEY]


def error_line(err: str, command: str) -> str:
    """The CLI's one error line (stderr also holds log lines); there must be one and no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"stg {command}: error:")]
    assert len(lines) == 1, err
    return lines[0]


def warp_fails(flow: Path, common: list[str], tmp_path: Path, capsys) -> str:
    """Run `stg warp` on a (damaged) flow store: it must fail with one line and write no warp store."""
    out = tmp_path / "warp.zarr"
    code = main(["warp", *common, "--flow", str(flow), "--out", str(out)])
    line = error_line(capsys.readouterr().err, "warp")
    assert code == 2
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".warp.zarr.")]
    return line


# ---------------------------------------------------------------- damaged stores through a real reader


def test_deleted_chunk_stops_the_reader_naming_store_array_and_frame(flow_store, tmp_path, capsys):
    source, common, frames = flow_store
    flow = copy_of(source, tmp_path)
    (flow / "backward" / "c" / "2" / "0" / "0" / "0").unlink()  # would read as zeros
    line = warp_fails(flow, common, tmp_path, capsys)
    assert str(flow) in line and "array 'backward'" in line and f"frame 2 ('{frames[2]}')" in line
    assert "missing" in line and f"rm -r {flow}" in line and "snakemake --forcerun flow" in line


def test_truncated_chunk_is_found_when_the_store_opens(flow_store, tmp_path, capsys):
    source, common, frames = flow_store
    flow = copy_of(source, tmp_path)
    chunk = flow / "forward" / "c" / "3" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:20])
    line = warp_fails(flow, common, tmp_path, capsys)
    assert str(flow) in line and "array 'forward'" in line and f"frame 3 ('{frames[3]}')" in line
    assert "truncated" in line


@pytest.mark.parametrize("unverified", ["verification off", "store without record"])
def test_truncated_chunk_is_a_store_error_while_reading(flow_store, tmp_path, capsys, monkeypatch, unverified):
    """No check at open (turned off, or an old store): the decode error of the read still names store and frame."""
    source, common, frames = flow_store
    flow = copy_of(source, tmp_path)
    if unverified == "verification off":
        monkeypatch.setenv("STG_VERIFY_STORES", "off")
    else:
        without_record(flow)
    chunk = flow / "forward" / "c" / "4" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:20])
    line = warp_fails(flow, common, tmp_path, capsys)
    assert str(flow) in line and "array 'forward'" in line and f"frame 4 ('{frames[4]}')" in line
    assert "cannot be decoded" in line and "truncated or corrupt" in line


@pytest.mark.parametrize("recorded", [True, False])
def test_missing_array_names_the_array(flow_store, tmp_path, capsys, recorded):
    source, common, _ = flow_store
    flow = copy_of(source, tmp_path)
    if not recorded:
        without_record(flow)
    shutil.rmtree(flow / "forward")
    line = warp_fails(flow, common, tmp_path, capsys)
    assert str(flow) in line and "array 'forward'" in line and "missing" in line


def test_tampered_record_is_an_error(flow_store, tmp_path, capsys):
    source, common, frames = flow_store
    flow = copy_of(source, tmp_path)
    group = zarr.open_group(str(flow), mode="r+")
    record = group.attrs[RECORD_KEY]
    record["arrays"]["backward"]["files"]["c/1/0/0/0"][0] += 1
    group.attrs[RECORD_KEY] = record
    line = warp_fails(flow, common, tmp_path, capsys)
    assert str(flow) in line and "array 'backward'" in line and f"frame 1 ('{frames[1]}')" in line
    assert "the record says" in line


def test_full_verification_catches_a_same_size_corruption(flow_store, tmp_path, monkeypatch):
    source, _, frames = flow_store
    flow = copy_of(source, tmp_path)
    chunk = flow / "forward" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))
    open_store(flow, "flow")  # sizes only: not seen
    with pytest.raises(DamagedStoreError, match="crc32") as error:
        open_store(flow, "flow", verify="full")
    assert error.value.store == str(flow) and error.value.array == "forward"
    assert f"frame 0 ('{frames[0]}')" in str(error.value)
    monkeypatch.setenv("STG_VERIFY_STORES", "full")
    with pytest.raises(DamagedStoreError, match="crc32"):
        open_store(flow, "flow")


def test_record_lists_every_chunk_with_size_and_checksum(flow_store):
    source, _, frames = flow_store
    record = open_store(source, "flow").attrs[RECORD_KEY]
    forward = record["arrays"]["forward"]
    assert forward["grid"][0] == len(frames) - 1 and forward["chunks"] == len(forward["files"])
    for key, (size, _crc) in forward["files"].items():
        assert (source / "forward" / key).stat().st_size == size


def test_old_store_without_record_still_opens_and_warns_once(flow_store, tmp_path, caplog, monkeypatch):
    source, _, _ = flow_store
    flow = copy_of(source, tmp_path)
    without_record(flow)
    monkeypatch.setattr(stg.store_verify, "_unverified_warned", False)
    with caplog.at_level(logging.DEBUG, logger="stg.store_verify"):
        first, second = open_store(flow, "flow"), open_store(flow, "flow")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "cannot be detected" in r.message]
    assert len(warnings) == 1 and str(flow) in warnings[0].message
    np.testing.assert_array_equal(first["forward"][:], open_store(source, "flow")["forward"][:])
    np.testing.assert_array_equal(second["backward"][2], open_store(source, "flow")["backward"][2])


def test_damaged_ragged_store_names_the_frame_through_read_ragged(tmp_path):
    frames = [np.ones((2, 3, 3), np.uint8), np.zeros((0, 3, 3), np.uint8), np.full((1, 3, 3), 7, np.uint8)]
    path = tmp_path / "segment.zarr"
    with build_store(path, "segment", {"frame_names": ["a", "b", "c"]}) as store:
        store.ragged("masks", frames, np.uint8, chunk_rows=1)
    (path / "masks" / "c" / "2" / "0" / "0").unlink()  # row 2 = frame 2's proposal
    with pytest.raises(DamagedStoreError) as error:
        open_store(path, "segment")
    assert error.value.array == "masks" and "row 2 of frame 2 ('c')" in str(error.value)
    assert "snakemake --forcerun segment" in str(error.value)
    chunk = path / "masks" / "c" / "1" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:5])  # row 1 = frame 0's second proposal
    group = open_store(path, "segment", verify="off")
    with pytest.raises(DamagedStoreError) as error:
        read_ragged(group, "masks", 0)
    assert str(path) in str(error.value) and "row 1 of frame 0 ('a')" in str(error.value)
    np.testing.assert_array_equal(read_ragged(group, "masks", 1), frames[1])  # undamaged frames still read
    raw = zarr.open_group(str(path), mode="r")  # a group not opened by open_store: read_array checks it too
    with pytest.raises(DamagedStoreError, match="cannot be decoded"):
        read_array(raw, "masks", path)
    with pytest.raises(DamagedStoreError, match="array 'boxes'.*missing"):
        read_array(raw, "boxes", path)


# ---------------------------------------------------------------- temporary siblings


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temp_sibling_of_a_dead_pid_is_removed_at_the_next_write(tmp_path):
    target = tmp_path / "video.zarr"
    host = _host()
    dead = tmp_path / f".video.zarr.tmp-{host}-{dead_pid()}-0123abcd"
    dead_old = tmp_path / f".video.zarr.old-{host}-{dead_pid()}-4567abcd"
    live = tmp_path / f".video.zarr.tmp-{host}-{os.getpid()}-89abcdef"
    elsewhere = tmp_path / f".video.zarr.tmp-another-host-{dead_pid()}-01234567"
    other_target = tmp_path / f".other.zarr.tmp-{host}-{dead_pid()}-76543210"
    for folder in (dead, dead_old, live, elsewhere, other_target):
        (folder / "forward").mkdir(parents=True)
    with build_store(target, "flow", {}) as store:
        store.array("x", (1,), np.uint8)[:] = 1
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([target.name, live.name, elsewhere.name, other_target.name])


def test_failed_write_waits_for_pending_zarr_writes_before_removing(tmp_path):
    """A full disk fails one chunk write while Zarr's other writes go on and recreate folders in the temporary
    store: the cleanup must wait for them, or the temporary store stays behind."""
    import zarr.core.sync

    target = tmp_path / "video.zarr"
    with pytest.raises(OSError, match="No space"), atomic_directory(target) as temporary:
        late = temporary / "forward" / "c" / "7"

        async def slow_write() -> None:
            await asyncio.sleep(0.3)
            late.parent.mkdir(parents=True, exist_ok=True)  # what zarr's LocalStore does before each chunk
            late.write_bytes(b"chunk")

        asyncio.run_coroutine_threadsafe(slow_write(), zarr.core.sync._get_loop())
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temporary / "forward" / "c" / "3"))
    time.sleep(0.5)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_during_a_stage_is_one_line_and_leaves_nothing(flow_store, tmp_path, capsys, monkeypatch):
    import zarr.storage._local as local

    _, common, _ = flow_store
    real_put, calls = local._put, []

    def put(path, value, exclusive=False):
        calls.append(path)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        time.sleep(0.05)  # the other writes of the batch are still running when the failure surfaces
        return real_put(path, value, exclusive=exclusive)

    monkeypatch.setattr(local, "_put", put)
    out = tmp_path / "flow.zarr"
    code = main(["flow", *common, "--out", str(out)])
    line = error_line(capsys.readouterr().err, "flow")
    assert code == 2
    assert "No space left on device" in line and f"writing {out}" in line
    time.sleep(0.3)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- output locations


def test_out_under_a_regular_file_is_one_line(flow_store, tmp_path, capsys):
    _, common, _ = flow_store
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["flow", *common, "--out", str(blocker / "sub" / "flow.zarr")])
    line = error_line(capsys.readouterr().err, "flow")
    assert code == 2 and str(blocker) in line and "is a file, not a folder" in line
    code = main(["metrics", "--davis-root", "x", "--results", "y", "--set", "val", "--out", str(blocker / "m")])
    line = error_line(capsys.readouterr().err, "metrics")
    assert code == 2 and str(blocker) in line and "is a file, not a folder" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_out_in_a_read_only_folder_is_one_line(flow_store, tmp_path, capsys):
    _, common, _ = flow_store
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = main(["flow", *common, "--out", str(locked / "flow.zarr")])
        line = error_line(capsys.readouterr().err, "flow")
        assert code == 2 and str(locked) in line and "not writable" in line
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_out_in_an_unwritable_folder_is_one_line_also_as_root(flow_store, tmp_path, capsys, monkeypatch):
    """The same check where the folder reports itself unwritable (as a read-only mount does, even for root)."""
    _, common, _ = flow_store
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != locked and real_access(path, mode, **kw))
    code = main(["flow", *common, "--out", str(locked / "deeper" / "flow.zarr")])
    line = error_line(capsys.readouterr().err, "flow")
    assert code == 2 and f"folder {locked} is not writable" in line
    assert list(locked.iterdir()) == []


def test_metrics_failure_leaves_no_output_folder(tiny_dataset, tmp_path, capsys, monkeypatch):
    import stg.metrics.tables as tables
    from stg.palette import write_palette_png

    results = tmp_path / "res"
    for video in open_dataset(tiny_dataset, "davis2017", "val").videos():
        (results / video.name).mkdir(parents=True)
        for name, path in video.annotation_paths.items():
            write_palette_png(results / video.name / f"{name}.png", read_annotation(path, "davis2017"))
    real_write, written = tables.write_text_atomic, []

    def write(path, text):
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(path)
        real_write(path, text)

    monkeypatch.setattr(tables, "write_text_atomic", write)
    out = tmp_path / "scores"
    code = main(["metrics", "--davis-root", str(tiny_dataset), "--results", str(results), "--set", "val",
                 "--out", str(out)])
    line = error_line(capsys.readouterr().err, "metrics")
    assert code == 2 and "No space left on device" in line
    assert written and not out.exists()


# ---------------------------------------------------------------- kill -9 and rerun


def test_killed_stage_reruns_to_the_same_store_and_leaves_no_temporary(tmp_path):
    from stg.datasets.synthetic import generate

    root = tmp_path / "data"
    (video,) = generate(root, seed=5, num_videos=1, frames=(60, 60), height=240, width=428, split="val")
    common = ["--dataset-root", str(root), "--split", "val", "--video", video]
    reference = tmp_path / "reference" / "flow.zarr"
    assert main(["flow", *common, "--out", str(reference)]) == 0

    work = tmp_path / "work"
    work.mkdir()
    out = work / "flow.zarr"
    process = subprocess.Popen([sys.executable, "-m", "stg.cli", "flow", *common, "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            temporaries = [p for p in work.iterdir() if p.name.startswith(".flow.zarr.tmp-")]
            if temporaries and any((temporaries[0] / "forward").glob("c/*/0/0/0")):
                break  # mid-write: some chunks written, the store not finished
            time.sleep(0.005)
        assert process.poll() is None, "the flow stage finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    left = [p.name for p in work.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".flow.zarr.tmp-{_host()}-{process.pid}-"), left

    assert main(["flow", *common, "--out", str(out)]) == 0
    assert [p.name for p in work.iterdir()] == ["flow.zarr"]
    rerun, expected = open_store(out, "flow", verify="full"), open_store(reference, "flow")
    for name in ("forward", "backward"):
        np.testing.assert_array_equal(rerun[name][:], expected[name][:])
    assert rerun.attrs[RECORD_KEY] == expected.attrs[RECORD_KEY]
