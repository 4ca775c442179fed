"""Rule `detect` under Snakemake: the store path's key, the CLI call, the benchmark TSV, the GPU resource.

No method chain includes detect yet, so a wrapper Snakefile appends it to the baseline's chain
(the keys of flow/warp/propagate do not depend on the chain) before including the real one.
"""

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


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("detect-workflow")
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    (workdir / "test.yaml").write_text(yaml.safe_dump(TEST_CONFIG))
    (workdir / "Snakefile").write_text(
        "import stg.config\n"
        "if 'detect' not in stg.config.METHOD_CHAINS['propagate']:\n"
        "    stg.config.METHOD_CHAINS['propagate'] = ['flow', 'warp', 'detect', 'propagate']\n"
        f"include: {str(REPO / 'Snakefile')!r}\n")
    return workdir


def _detect_target(workdir: Path) -> str:
    import stg.config as config

    chain = list(config.METHOD_CHAINS["propagate"])
    try:
        if "detect" not in chain:
            config.METHOD_CHAINS["propagate"] = ["flow", "warp", "detect", "propagate"]
        merged = config.deep_merge(yaml.safe_load((workdir / "config" / "config.yaml").read_text()), TEST_CONFIG)
        plan = config.plan_run(merged, "demo", "val", "propagate")
    finally:
        config.METHOD_CHAINS["propagate"] = chain
    return plan.store("detect", "synth00-occlusion")


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(workdir / "Snakefile"), "-d", str(workdir), "--cores", "2",
               *args, "--configfile", str(workdir / "test.yaml")]
    return subprocess.run(command, capture_output=True, text=True, cwd=workdir)


def test_rule_detect_writes_the_store_and_benchmark(workdir):
    target = _detect_target(workdir)
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


def test_changed_detect_setting_changes_only_the_detect_key(workdir):
    import stg.config as config

    base = _detect_target(workdir)
    chain = list(config.METHOD_CHAINS["propagate"])
    try:
        config.METHOD_CHAINS["propagate"] = ["flow", "warp", "detect", "propagate"]
        merged = config.deep_merge(yaml.safe_load((workdir / "config" / "config.yaml").read_text()), TEST_CONFIG)
        plain = config.plan_run(merged, "demo", "val", "propagate")
        changed = config.plan_run(config.deep_merge(merged, {"stages": {"detect": {
            "motion": {"seed": 9}, "device": "cpu", "torchvision": {"batch_size": 7}}}}), "demo", "val", "propagate")
        batch_only = config.plan_run(config.deep_merge(merged, {"stages": {"detect": {
            "device": "cpu", "torchvision": {"batch_size": 7, "box_score_thresh": 0.2}}}}), "demo", "val", "propagate")
    finally:
        config.METHOD_CHAINS["propagate"] = chain
    assert plain.store("detect", "synth00-occlusion") == base
    assert changed.keys["detect"] != plain.keys["detect"]
    assert changed.keys["warp"] == plain.keys["warp"] and changed.keys["propagate"] == plain.keys["propagate"]
    # Device, batch size and the settings of backends not in use leave the key alone.
    assert batch_only.keys["detect"] == plain.keys["detect"]
