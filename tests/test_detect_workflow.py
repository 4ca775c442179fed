"""Rule `detect` under Snakemake: the store path's key, the CLI call, the benchmark TSV, the GPU resource."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_helpers import make_workdir, merged_config, snakemake

pytestmark = pytest.mark.slow

# On top of the reduced demo (.test/config/config.yaml): one video of 6 small frames is enough for one rule; the
# motion backend (weight-free) named, since the default is a union with YOLOX.
OVERRIDE = {"datasets": {"demo": {"synthetic": {"num_videos": 1, "min_frames": 6, "max_frames": 6,
                                                "height": 120, "width": 214}}},
            "stages": {"detect": {"backend": "motion"}}}
CACHED = {"stages": {"graph": {"proposals": "cached"}}}  # the segment stage reads detect (default: the online graph)


def _config(*extra: dict | None) -> dict:
    return merged_config(OVERRIDE, *extra)


def _plan(config: dict):
    """The plan of the first configured variant whose method chain runs detect."""
    from stg.config import METHOD_CHAINS, plan_run

    variant = next(name for name, spec in config["variants"].items() if "detect" in METHOD_CHAINS[spec["method"]])
    return plan_run(config, "demo", "val", variant)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("detect-workflow")
    make_workdir(workdir, OVERRIDE)
    return workdir


def _detect_target() -> str:
    return _plan(_config()).store("detect", "synth00-occlusion")


def test_rule_detect_writes_the_store_and_benchmark(workdir):
    target = _detect_target()
    dry = snakemake(workdir, "-n", "-p", target, check=False)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "stg detect" in dry.stdout and "--device auto" in dry.stdout and "gpu=0" in dry.stdout
    result = snakemake(workdir, target, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    from stg.store import open_store

    store = open_store(workdir / target, "detect")
    key = target.split("/")[3]
    assert store.attrs["key"] == key and store.attrs["backend"]["backend"] == "motion"
    assert store["offsets"].shape == (7,) and int(store["offsets"][-1]) > 0
    assert (workdir / "cache" / "demo" / "benchmarks" / "detect" / key / "synth00-occlusion.tsv").is_file()
    again = snakemake(workdir, "-n", target)
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.parametrize(("graph", "downstream"), [(None, "graph"), (CACHED, "segment")])
def test_changed_detect_setting_changes_only_the_detect_key(graph, downstream):
    plain = _plan(_config(graph))
    changed = _plan(_config(graph, {"stages": {"detect": {"motion": {"seed": 9}}}}))
    # Device, batch size and the settings of backends not in use leave the key alone.
    execution = _plan(_config(graph, {"stages": {"detect": {"device": "cpu", "torchvision": {
        "batch_size": 7, "box_score_thresh": 0.2}}}}))
    assert changed.keys["detect"] != plain.keys["detect"]
    assert changed.keys["warp"] == plain.keys["warp"] and changed.keys["flow"] == plain.keys["flow"]
    assert plain.upstream[downstream]["detect"] == "detect"
    assert changed.keys[downstream] != plain.keys[downstream]  # downstream follows
    assert changed.keys["graph"] != plain.keys["graph"]
    assert execution.keys == plain.keys


def test_rule_detect_runs_a_union_of_yolox_and_motion(tmp_path):
    from stg.config import deep_merge
    from stg.stages import stage_uses_gpu
    from stg.store import open_store

    union = {"stages": {"detect": {"backend": "union", "union": {"backends": ["yolox", "motion"]}}}}
    make_workdir(tmp_path, deep_merge(OVERRIDE, union))
    plan = _plan(_config(union))
    target = plan.store("detect", "synth00-occlusion")
    assert target != _detect_target()
    gpu = int(stage_uses_gpu("detect", plan.settings["detect"], "auto"))  # ONNX Runtime's CUDA provider decides
    dry = snakemake(tmp_path, "-n", "-p", target, check=False)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"gpu={gpu}" in dry.stdout
    result = snakemake(tmp_path, target, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    store = open_store(tmp_path / target, "detect")
    identity = store.attrs["backend"]
    assert identity["backend"] == "union"
    assert [member["backend"] for member in identity["members"]] == ["yolox", "motion"]
    assert identity["members"][0]["weights"]["id"] == "yolox_nano_coco"
    assert store["offsets"].shape == (7,) and int(store["offsets"][-1]) > 0
    again = snakemake(tmp_path, "-n", target)
    assert "Nothing to be done" in again.stdout + again.stderr
