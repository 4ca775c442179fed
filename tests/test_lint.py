"""The Snakemake community's conventions: `snakemake --lint` finds nothing, `snakefmt --check` changes nothing, and
config/README.md is the page the schema generates."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RULE_FILES = [REPO / "Snakefile", REPO / "workflow"]


def test_snakemake_lint_reports_nothing():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--cores", "1"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Lints for" not in output and "Congratulations, your workflow is in a good condition!" in output, output


def test_rule_files_are_snakefmt_formatted():
    snakefmt = shutil.which("snakefmt") or str(Path(sys.executable).with_name("snakefmt"))
    if not Path(snakefmt).is_file():
        pytest.skip("snakefmt is not installed (pip install -e '.[test]' installs it)")
    result = subprocess.run([snakefmt, "--check", *map(str, RULE_FILES)], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_readme_is_generated_from_the_schema():
    from stg.config_docs import render

    assert (REPO / "config" / "README.md").read_text() == render(), \
        "config/README.md is stale: python -m stg.config_docs > config/README.md"


def test_every_config_key_is_documented():
    import yaml

    from stg.config_docs import render

    page = render()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())

    def keys(value, prefix):
        if isinstance(value, dict) and prefix not in ("datasets", "variants"):
            for name, child in value.items():
                yield from keys(child, f"{prefix}.{name}" if prefix else name)
        else:
            yield prefix

    missing = [key for key in keys(config, "") if f"`{key}`" not in page]
    assert not missing, missing
