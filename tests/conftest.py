"""Shared fixtures: a tiny synthetic DAVIS-2017-layout dataset generated once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DAVIS16 = REPO.parent / "shared" / "data" / "davis2016-train"

# The workflow's rules call the `stg` CLI: make the one of this interpreter's environment visible.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Two short, small synthetic videos: enough to run every stage quickly."""
    from stg.datasets.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate(root, seed=3, num_videos=2, frames=(8, 10), height=120, width=214, split="val")
    return root


@pytest.fixture()
def davis16_root() -> Path:
    if not SHARED_DAVIS16.is_dir():
        pytest.skip(f"real DAVIS 2016 sequences not found at {SHARED_DAVIS16} (only present in this project's CI)")
    return SHARED_DAVIS16
