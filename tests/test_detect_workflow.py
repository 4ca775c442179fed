"""Rule `detect` under Snakemake: the store path's key, the CLI call, the benchmark TSV, the GPU resource."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

TEST_CONFIG = {"datasets": {"demo": {"layout": "synthetic", "splits": ["val"],
                                     "synthetic": {"seed": 0, "num_videos": 1, "min_frames": 6, "max_frames": 6,
                                                   "height": 120, "width": 214}}}}


def _config(extra: dict | None = None) -> dict:
    from stg.config import deep_merge

    return deep_merge(deep_merge(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), TEST_CONFIG),
                      extra or {})


def _plan(config: dict):
    """The plan of the first configured variant whose method chain runs detect."""
    from stg.config import METHOD_CHAINS, plan_run

    variant = next(name for name, spec in config["variants"].items() if "detect" in METHOD_CHAINS[spec["method"]])
    return plan_run(config, "demo", "val", variant)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("detect-workflow")
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    (workdir / "test.yaml").write_text(yaml.safe_dump(TEST_CONFIG))
    return workdir


def _detect_target() -> str:
    return _plan(_config()).store("detect", "synth00-occlusion")


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
               *args, "--configfile", str(workdir / "test.yaml")]
    return subprocess.run(command, capture_output=True, text=True, cwd=workdir)


def test_rule_detect_writes_the_store_and_benchmark(workdir):
    target = _detect_target()
    dry = snakemake(workdir, "-n", "-p", target)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "stg detect" in dry.stdout and "--device auto" in dry.stdout and "gpu=0" in dry.stdout
    result = snakemake(workdir, target)
    assert result.returncode == 0, result.stdout + result.stderr
    from stg.store import open_store

    store = open_store(workdir / target, "detect")
    key = target.split("/")[3]
    assert store.attrs["key"] == key and store.attrs["backend"]["backend"] == "motion"
    assert store["offsets"].shape == (7,) and int(store["offsets"][-1]) > 0
    assert (workdir / "cache" / "demo" / "benchmarks" / "detect" / key / "synth00-occlusion.tsv").is_file()
    again = snakemake(workdir, "-n", target)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_changed_detect_setting_changes_only_the_detect_key():
    plain = _plan(_config())
    changed = _plan(_config({"stages": {"detect": {"motion": {"seed": 9}}}}))
    # Device, batch size and the settings of backends not in use leave the key alone.
    execution = _plan(_config({"stages": {"detect": {"device": "cpu", "torchvision": {
        "batch_size": 7, "box_score_thresh": 0.2}}}}))
    assert changed.keys["detect"] != plain.keys["detect"]
    assert changed.keys["warp"] == plain.keys["warp"] and changed.keys["flow"] == plain.keys["flow"]
    assert changed.keys["segment"] != plain.keys["segment"]  # downstream follows
    assert execution.keys == plain.keys
