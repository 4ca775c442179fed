"""Shared fixtures: a tiny synthetic DAVIS-2017-layout dataset generated once per session. The end-to-end tests'
Snakemake helpers (reduced demo config, runner, dry-run parser) are in workflow_helpers.py next to this file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DAVIS16 = REPO.parent / "shared" / "data" / "davis2016-train"

# tests/ has no __init__.py: make `import workflow_helpers` work under any pytest import mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

# The workflow's rules call the `stg` CLI: make the one of this interpreter's environment visible.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Two short, small synthetic videos: enough to run every stage quickly."""
    from stg.datasets.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate(root, seed=3, num_videos=2, frames=(8, 10), height=120, width=214, split="val")
    return root


@pytest.fixture(scope="session")
def random_segmenter(tmp_path_factory) -> Path:
    """A randomly initialised mobilenet_v2 segmenter checkpoint: for plumbing tests, not the masks' quality."""
    import torch

    from stg.segment.deeplab import build_deeplab

    path = tmp_path_factory.mktemp("weights") / "segmenter.pt"
    torch.manual_seed(0)
    torch.save(build_deeplab("mobilenet_v2").state_dict(), path)
    return path


@pytest.fixture()
def davis16_root() -> Path:
    if not SHARED_DAVIS16.is_dir():
        pytest.skip(f"real DAVIS 2016 sequences not found at {SHARED_DAVIS16} (only present in this project's CI)")
    return SHARED_DAVIS16
