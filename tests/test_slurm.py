"""The SLURM profile on a real cluster: the reduced demo as cluster jobs equals the local run, and a
stage failing on the cluster fails the run with the job's log in Snakemake's output.

Needs sbatch and a running cluster (CI: .ci/slurm_up.sh). Skips when sbatch is absent, unless
STG_REQUIRE_SLURM=1, which turns every missing piece into a failure. The measured durations go to
$STG_TEST_ARTIFACTS/slurm_timing.json (default: the test's temporary folder).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_helpers import make_workdir

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow" / "profiles" / "slurm"
RUN_TIMEOUT_S = 900  # a job the cluster can never start would otherwise hang the suite

pytestmark = pytest.mark.slow


def _unavailable(reason: str) -> None:
    if os.environ.get("STG_REQUIRE_SLURM") == "1":
        pytest.fail(f"STG_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def cluster_size() -> tuple[str, int, int]:
    """(partition, CPUs, memory MB) of the profile's partition; skips or fails when there is no cluster."""
    missing = [tool for tool in ("sbatch", "squeue", "sinfo", "scontrol") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"SLURM client tools not found: {', '.join(missing)} (start a cluster with .ci/slurm_up.sh)")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        _unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    partition = yaml.safe_load((PROFILE / "config.yaml").read_text())["default-resources"]["slurm_partition"]
    result = subprocess.run(["sinfo", "--noheader", "--partition", partition, "--format", "%a %T %c %m"],
                            capture_output=True, text=True, timeout=30)
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        _unavailable(f"no SLURM cluster answers for partition '{partition}' ({result.stderr.strip() or 'no nodes'});"
                     " start one with .ci/slurm_up.sh")
    usable = [line for line in lines if line[0] == "up" and line[1].rstrip("*") in ("idle", "mixed", "allocated")]
    if not usable:
        _unavailable(f"partition '{partition}' has no usable node: {result.stdout.strip()}")
    cpus = max(int(line[2].rstrip("+")) for line in usable)
    memory = max(int(line[3].rstrip("+")) for line in usable)
    return partition, cpus, memory


def snakemake(workdir: Path, target: str, *args: str, configs: list[Path]) -> tuple[subprocess.CompletedProcess, float]:
    """Run Snakemake on the repository's Snakefile in workdir; returns the result and its wall time."""
    command = [sys.executable, "-m", "snakemake", target, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args,
               "--configfile", *map(str, configs)]
    started = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=workdir, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        queue = subprocess.run(["squeue", "--format=%i %j %T %r"], capture_output=True, text=True).stdout
        subprocess.run(["scancel", "--user", str(os.getuid())], capture_output=True)
        raise AssertionError(f"snakemake {target} took over {RUN_TIMEOUT_S} s; squeue:\n{queue}\n"
                             f"{error.stdout}\n{error.stderr}") from None
    return result, time.perf_counter() - started


def slurm_args(cpus: int, memory: int) -> list[str]:
    """The profile, with one group job no wider than this cluster's node (what a site sets in `resources:`)."""
    return ["--profile", str(PROFILE), "--resources", f"cpus_per_task={cpus}", f"mem_mb={memory}", "gpu=1"]


def artifacts_dir(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("STG_TEST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The reduced demo run locally and as SLURM jobs, each in its own working directory."""
    _, cpus, memory = cluster_size()
    local, cluster = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("slurm")
    local_result, local_s = snakemake(local, "results/demo_val", "--cores", "2", configs=make_workdir(local))
    assert local_result.returncode == 0, f"local run failed:\n{local_result.stdout}\n{local_result.stderr}"
    result, cluster_s = snakemake(cluster, "results/demo_val", *slurm_args(cpus, memory),
                                  configs=make_workdir(cluster))
    timing = {"local_run_s": round(local_s, 1), "slurm_run_s": round(cluster_s, 1), "node_cpus": cpus,
              "node_mem_mb": memory}
    (artifacts_dir(tmp_path_factory) / "slurm_timing.json").write_text(json.dumps(timing, indent=2))
    print(f"\nSLURM demo run: {cluster_s:.1f} s (local: {local_s:.1f} s)")
    return local, cluster, result


def test_slurm_run_completes_as_cluster_jobs(runs):
    _, cluster, result = runs
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"SLURM run failed:\n{output}"
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)", output)
    kinds = sorted(Path(log).parts[Path(log).parts.index("slurm_logs") + 1] for _, log in submitted)
    # synth, ONE group job for both videos' per-video stages, metrics: not one cluster job per (stage, video)
    assert len(kinds) == 3 and kinds[0].startswith("group_video") and kinds[1:] == ["rule_metrics", "rule_synth"], \
        output
    assert (cluster / "results" / "demo_val" / "metrics.json").is_file()


def test_slurm_results_equal_local_results(runs):
    local, cluster, _ = runs
    local_run, cluster_run = local / "results" / "demo_val", cluster / "results" / "demo_val"
    local_pngs = sorted(p.relative_to(local_run) for p in (local_run / "Annotations").rglob("*.png"))
    cluster_pngs = sorted(p.relative_to(cluster_run) for p in (cluster_run / "Annotations").rglob("*.png"))
    assert local_pngs and local_pngs == cluster_pngs
    different = [str(p) for p in local_pngs if (local_run / p).read_bytes() != (cluster_run / p).read_bytes()]
    assert not different, f"PNGs differ between the local and the SLURM run: {different[:5]}"
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (local_run, cluster_run)]
    assert metrics[0] == metrics[1]
    assert (cluster_run / "report.html").stat().st_size > 10_000


def _benchmark_sums(paths: list[Path]) -> dict[str, float]:
    sums = {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0.0}
    for path in paths:
        with open(path, newline="") as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        sums["jobs"] += 1
        sums["wall_s"] += float(row["s"])
        sums["cpu_s"] += float(row["cpu_time"])
        sums["peak_rss_mb"] = max(sums["peak_rss_mb"], float(row["max_rss"]))
    return sums


def test_run_json_timing_comes_from_the_cluster_jobs(runs):
    _, cluster, _ = runs
    run = json.loads((cluster / "results" / "demo_val" / "run.json").read_text())
    files_of: dict[str, set[Path]] = {}  # stage -> the benchmark files of its jobs (every pass: 'warp@2' is warp)
    for node, key in run["keys"].items():
        stage = node.split("@", 1)[0]
        if stage != "dataset":
            files_of.setdefault(stage, set()).update((cluster / "cache" / "demo" / "benchmarks" / stage / key)
                                                     .glob("*.tsv"))
    assert {"flow", "warp"} <= set(files_of)
    for stage, files in files_of.items():
        assert len(files) >= 2 and len(files) % 2 == 0, f"{stage}: the cluster jobs wrote {len(files)} benchmarks"
        expected, timing = _benchmark_sums(sorted(files)), run["timing"][stage]
        assert timing["jobs"] == len(files)
        for field in ("wall_s", "cpu_s", "peak_rss_mb"):
            assert timing[field] == pytest.approx(expected[field]), (stage, field)
        # Wall time is exact. CPU time and peak RSS are Snakemake's samples (every 0.5 s): a job shorter than
        # that (some stages on this tiny demo) can show only its shell, so only "measured at all" holds here.
        assert timing["wall_s"] > 0.2 and timing["peak_rss_mb"] > 0, (stage, timing)
    # the results job measures itself with getrusage: a Python process with numpy/zarr/matplotlib loaded
    assert run["timing"]["results"]["wall_s"] > 0 and run["timing"]["results"]["peak_rss_mb"] > 30


def test_failing_stage_on_the_cluster_fails_the_run_and_shows_its_log(tmp_path_factory):
    """A dataset with one corrupt JPEG: its flow job fails on the cluster; Snakemake exits non-zero and prints
    the job's log (the stage's error naming the file) and where SLURM's own log is."""
    _, cpus, memory = cluster_size()
    from stg.datasets.synthetic import generate

    workdir = tmp_path_factory.mktemp("slurm_broken")
    root = workdir / "broken"
    videos = generate(root, seed=5, num_videos=2, frames=(8, 10), height=120, width=214, split="val")
    corrupt = sorted((root / "JPEGImages" / "480p" / videos[1]).glob("*.jpg"))[4]
    corrupt.write_bytes(b"this is not a JPEG image")
    configs = make_workdir(workdir, {"datasets": {"broken": {"layout": "davis2017", "root": str(root),
                                                             "splits": ["val"]}}})
    result, seconds = snakemake(workdir, "results/broken_val", *slurm_args(cpus, memory), configs=configs)
    output = result.stdout + result.stderr
    print(f"\nfailing SLURM run: {seconds:.1f} s")
    assert result.returncode != 0, output
    assert "submitted with SLURM jobid" in output
    assert f"{corrupt}: frame image is corrupt or not an image" in output  # the flow job's log, printed
    assert re.search(r"slurm_logs/\S+\.log", output)                       # and SLURM's log of the job
    assert not (workdir / "results" / "broken_val").exists()
