"""What the end-to-end tests share: a Snakemake working folder with the reduced demo config, the runner and the
dry-run parser. Test modules import it as `workflow_helpers` (tests/conftest.py puts tests/ on sys.path)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# The reduced demo every end-to-end test runs, layered on top of config/config.yaml.
TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"


def make_workdir(workdir: Path, override: dict | None = None) -> list[Path]:
    """Prepare workdir for the repository's Snakefile: config/config.yaml (the Snakefile's configfile), test.yaml
    (the reduced demo) and, when given, override.yaml (this test's changes on top). Returns the --configfile list."""
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config" / "config.yaml", workdir / "config" / "config.yaml")
    shutil.copy(TEST_CONFIG, workdir / "test.yaml")
    if override:
        (workdir / "override.yaml").write_text(yaml.safe_dump(override))
    return workdir_configs(workdir)


def workdir_configs(workdir: Path) -> list[Path]:
    """The config files make_workdir wrote, in the order Snakemake must merge them."""
    return [path for path in (workdir / "test.yaml", workdir / "override.yaml") if path.is_file()]


def merged_config(*overrides: dict | None) -> dict:
    """The config a run in a make_workdir folder sees (config/config.yaml, the reduced demo, the overrides), merged
    key by key as Snakemake merges config files: for planning stores without running Snakemake."""
    from stg.config import deep_merge

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for layer in (yaml.safe_load(TEST_CONFIG.read_text()), *overrides):
        config = deep_merge(config, layer or {})
    return config


def snakemake(workdir: Path, *args: str, extra_config: Path | None = None, check: bool = True
              ) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in workdir on 2 cores with the folder's config files, then extra_config.
    With check, a non-zero exit fails the test with Snakemake's output."""
    configs = [*workdir_configs(workdir), *([extra_config] if extra_config else [])]
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--cores", "2", *args, "--configfile", *map(str, configs)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> number of jobs in a dry run."""
    counts: dict[str, int] = {}
    for rule in re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, flags=re.M):
        counts[rule] = counts.get(rule, 0) + 1
    return counts
