"""RAFT backend with random weights: preprocessing, padding/cropping and checkpoint failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.optical_flow import raft_large, raft_small
from torchvision.transforms._presets import OpticalFlow

from stg.errors import InputError
from stg.flow.backends import make_flow_backend
from stg.flow.raft import RaftFlow, padded_size


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("raft") / "raft_small_random.pth"
    torch.save(raft_small(weights=None, progress=False).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def frames() -> tuple[np.ndarray, np.ndarray]:
    """Two 100 x 130 pairs: neither side a multiple of 8, and below RAFT's 128 px minimum height."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(2, 100, 136, 3), dtype=np.uint8)
    return base[:, :, :130], base[:, :, 3:133]  # targets: content shifted 3 px left


def test_padded_size() -> None:
    assert padded_size(100, 130) == (128, 136)
    assert padded_size(480, 854) == (480, 856)
    assert padded_size(8, 8) == (128, 128)


def test_flow_matches_torchvision(small_checkpoint: Path, frames: tuple[np.ndarray, np.ndarray]) -> None:
    sources, targets = frames
    backend = RaftFlow(model="raft_small", weights=str(small_checkpoint), num_flow_updates=2, device="cpu")
    out = backend.flow(sources, targets)
    assert out.shape == (2, 100, 130, 2) and out.dtype == np.float32
    assert np.isfinite(out).all()

    # The same thing done by hand with torchvision's own preprocessing transform.
    net = raft_small(weights=None, progress=False)
    net.load_state_dict(torch.load(small_checkpoint, weights_only=True))
    net.eval()
    img1, img2 = OpticalFlow()(
        torch.from_numpy(sources).permute(0, 3, 1, 2), torch.from_numpy(targets).permute(0, 3, 1, 2)
    )
    pad = (0, 136 - 130, 0, 128 - 100)
    img1 = torch.nn.functional.pad(img1, pad, mode="replicate")
    img2 = torch.nn.functional.pad(img2, pad, mode="replicate")
    with torch.inference_mode():
        expected = net(img1, img2, num_flow_updates=2)[-1][:, :, :100, :130].permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


def test_batching_does_not_change_result(small_checkpoint: Path, frames: tuple[np.ndarray, np.ndarray]) -> None:
    sources, targets = frames
    one = RaftFlow(model="raft_small", weights=str(small_checkpoint), num_flow_updates=2, device="cpu", batch_size=1)
    two = RaftFlow(model="raft_small", weights=str(small_checkpoint), num_flow_updates=2, device="cpu", batch_size=2)
    np.testing.assert_allclose(one.flow(sources, targets), two.flow(sources, targets), rtol=0, atol=1e-4)
    empty = one.flow(sources[:0], targets[:0])
    assert empty.shape == (0, 100, 130, 2)


def test_identity(small_checkpoint: Path) -> None:
    backend = RaftFlow(model="raft_small", weights=str(small_checkpoint), num_flow_updates=2, device="cpu")
    ident = backend.identity()
    assert ident["backend"] == "raft" and ident["model"] == "raft_small"
    assert ident["num_flow_updates"] == 2 and ident["device"] == "cpu"
    assert ident["weights"]["file"] == small_checkpoint.name and len(ident["weights"]["sha256"]) == 16


def test_large_checkpoint_for_small_model(tmp_path: Path) -> None:
    path = tmp_path / "raft_large_random.pth"
    torch.save(raft_large(weights=None, progress=False).state_dict(), path)
    with pytest.raises(InputError) as info:
        RaftFlow(model="raft_small", weights=str(path), device="cpu")
    assert info.value.where == str(path)
    assert "does not fit RAFT" in info.value.problem and "stages.flow.raft.weights" in info.value.problem


def test_garbage_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as info:
        RaftFlow(model="raft_small", weights=str(path), device="cpu")
    assert info.value.where == str(path) and "cannot read" in info.value.problem


def test_missing_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(InputError) as info:
        RaftFlow(model="raft_large", device="cpu")
    assert info.value.where == "stages.flow.raft.weights"
    assert "raft_large_C_T_SKHT_V2-ff5fadd5.pth" in info.value.problem


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"model": "raft_medium"}, "stages.flow.raft.model"),
        ({"num_flow_updates": 0}, "stages.flow.raft.num_flow_updates"),
        ({"batch_size": 1.5}, "stages.flow.raft.batch_size"),
        ({"device": "gpu"}, "stages.flow.device"),
    ],
)
def test_bad_settings(kwargs: dict, where: str, small_checkpoint: Path) -> None:
    raft = {"model": "raft_small", "weights": str(small_checkpoint), **kwargs}
    device = raft.pop("device", "cpu")  # the schema checks the settings when the backend is built
    with pytest.raises(InputError) as info:
        make_flow_backend({"backend": "raft", "device": device, "raft": raft})
    assert info.value.where == where


def test_bad_inputs(small_checkpoint: Path) -> None:
    backend = RaftFlow(model="raft_small", weights=str(small_checkpoint), num_flow_updates=1, device="cpu")
    frame = np.zeros((1, 128, 128, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        backend.flow(frame.astype(np.float32), frame)
    with pytest.raises(ValueError, match="differ"):
        backend.flow(frame, np.zeros((1, 128, 136, 3), np.uint8))
