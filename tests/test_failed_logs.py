"""A failed job shows its error where users look: `stg`'s own message appears in Snakemake's output, with a plain
`snakemake --cores N` (no --profile) and in both profiles."""

from __future__ import annotations

import pytest
import yaml
from workflow_helpers import REPO, make_workdir, snakemake


@pytest.mark.parametrize("profile", ["default", "slurm"])
def test_profiles_show_failed_logs(profile):
    settings = yaml.safe_load((REPO / "workflow" / "profiles" / profile / "config.yaml").read_text())
    assert settings["show-failed-logs"] is True


def test_plain_snakemake_prints_the_stg_error_of_a_failed_job(tmp_path):
    """One video with a corrupt JPEG: its flow job (the first one) fails, and the message `stg flow` wrote to the
    job's log is in Snakemake's output, not only 'Error in rule flow' and the log's path."""
    from stg.datasets.synthetic import generate

    root = tmp_path / "data"
    (name,) = generate(root, seed=1, num_videos=1, frames=(6, 6), height=96, width=160, split="val")
    corrupt = root / "JPEGImages" / "480p" / name / "00002.jpg"
    corrupt.write_bytes(b"not a jpeg")
    workdir = tmp_path / "work"
    make_workdir(workdir, {"datasets": {"bad": {"layout": "davis2017", "root": str(root), "splits": ["val"]}}})
    result = snakemake(workdir, "--cores", "1", "results/bad_val__propagate", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in rule flow" in output
    # the line `stg flow` wrote to the job's log (the wording of the problem is the reader's business)
    error_lines = [line for line in output.splitlines() if line.startswith(f"stg flow: error: {corrupt}: ")]
    assert error_lines and "corrupt" in error_lines[0], output[-3000:]
