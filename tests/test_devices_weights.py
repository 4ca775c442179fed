"""Device settings and checkpoint handling: the failures users hit first must say what to fix."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from stg.devices import resolve_device, uses_gpu
from stg.errors import InputError
from stg.weights import load_state_dict_checked, resolve_weights, weights_identity

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="machine has CUDA")


# --- devices -------------------------------------------------------------------------------


def test_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_a_clear_error(spec: str) -> None:
    with pytest.raises(InputError) as info:
        resolve_device(spec, "flow.device")
    assert info.value.where == "flow.device"
    assert "no usable CUDA device" in info.value.problem and spec in info.value.problem


@needs_cuda
def test_cuda_with_cuda() -> None:
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(InputError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "cpu:0", "auto:1", "mps", "CPU", " cpu", "", 0, None])
def test_bad_device_strings(spec: object) -> None:
    with pytest.raises(InputError) as info:
        resolve_device(spec)  # type: ignore[arg-type]
    assert info.value.where == "device"
    assert "cuda:N" in info.value.problem


def test_uses_gpu() -> None:
    assert uses_gpu("cuda") and uses_gpu("cuda:1")  # declared even without CUDA: the job will need one
    assert not uses_gpu("cpu")
    assert uses_gpu("auto") == torch.cuda.is_available()
    with pytest.raises(InputError):
        uses_gpu("gpu")


# --- weights -------------------------------------------------------------------------------


@pytest.fixture
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TORCH_HOME of our own, so the user's cache cannot change the outcome."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def test_configured_path_missing(tmp_path: Path, empty_torch_home: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(InputError) as info:
        resolve_weights(str(missing), "raft_small_C_T_V2-01064c6d.pth", "flow.weights")
    assert info.value.where == str(missing)
    assert "missing" in info.value.problem and "flow.weights" in info.value.problem


def test_configured_path_used_even_if_cache_has_file(tmp_path: Path, empty_torch_home: Path) -> None:
    (empty_torch_home / "hub" / "checkpoints").mkdir(parents=True)
    (empty_torch_home / "hub" / "checkpoints" / "x.pth").write_bytes(b"cached")
    mine = tmp_path / "mine.pth"
    mine.write_bytes(b"mine")
    assert resolve_weights(mine, "x.pth", "s") == mine


def test_no_path_and_empty_cache(empty_torch_home: Path) -> None:
    with pytest.raises(InputError) as info:
        resolve_weights(None, "raft_small_C_T_V2-01064c6d.pth", "flow.weights")
    assert info.value.where == "flow.weights"
    assert "raft_small_C_T_V2-01064c6d.pth" in info.value.problem
    assert str(empty_torch_home) in info.value.problem


def test_no_path_and_no_default(empty_torch_home: Path) -> None:
    with pytest.raises(InputError, match="no torchvision default"):
        resolve_weights("", None, "segment.weights")


def test_cache_file_is_used(empty_torch_home: Path) -> None:
    cached = empty_torch_home / "hub" / "checkpoints" / "raft_small_C_T_V2-01064c6d.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert resolve_weights(None, cached.name, "flow.weights") == cached


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


@pytest.mark.parametrize("wrap", [None, "state_dict", "model", "module."])
def test_load_plain_and_wrapped(tmp_path: Path, wrap: str | None) -> None:
    source = _net()
    state = source.state_dict()
    if wrap == "module.":
        obj: object = {f"module.{k}": v for k, v in state.items()}
    elif wrap:
        obj = {wrap: state, "epoch": 3}
    else:
        obj = state
    path = tmp_path / "w.pth"
    torch.save(obj, path)
    target = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    load_state_dict_checked(target, path, "s")
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


def test_load_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(InputError) as info:
        load_state_dict_checked(_net(), path, "detect.weights")
    assert info.value.where == str(path)
    assert "cannot read" in info.value.problem and "detect.weights" in info.value.problem


def test_load_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(InputError, match="not a state dict"):
        load_state_dict_checked(_net(), path, "s")


def test_load_wrong_keys_and_shapes(tmp_path: Path) -> None:
    state = _net().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["2.bias"]
    state["0.weight"] = torch.zeros(5, 3)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(InputError) as info:
        load_state_dict_checked(_net(), path, "s")
    problem = info.value.problem
    assert "1 missing key(s) (2.bias)" in problem
    assert "1 unexpected key(s) (extra.weight)" in problem
    assert "0.weight (5, 3) vs model (4, 3)" in problem
    assert "(setting s)" in problem


def test_weights_identity(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    path.write_bytes(b"abc" * 1000)
    ident = weights_identity(path)
    assert ident == {"file": "w.pth", "bytes": 3000, "sha256": hashlib.sha256(b"abc" * 1000).hexdigest()[:16]}


def test_load_checkpoint_with_python_objects(tmp_path: Path) -> None:
    """Full training checkpoints often pickle argparse.Namespace; we refuse rather than unpickle unsafely."""
    import argparse

    path = tmp_path / "train.pth"
    torch.save({"model": _net().state_dict(), "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(InputError) as info:
        load_state_dict_checked(_net(), path, "s")
    assert "argparse.Namespace" in info.value.problem and "state dict" in info.value.problem


def test_load_truncated(tmp_path: Path) -> None:
    good = tmp_path / "good.pth"
    torch.save(_net().state_dict(), good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError, match="cannot read as a torch checkpoint"):
        load_state_dict_checked(_net(), cut, "s")
