"""benchmarks/fold_seeds.py: Table 4's rows averaged over trainings, and issue 10's order checks on the means."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fold_seeds  # noqa: E402


def write_run(folder: Path, per_video: dict[str, tuple[float, float]]) -> None:
    """A result folder as the metrics stage writes it: per-sequence CSV (J, F) and run.json's global J&F."""
    folder.mkdir(parents=True)
    lines = ["Sequence,J-Mean,F-Mean"]
    lines += [f"{video},{j},{f}" for video, (j, f) in per_video.items()]
    (folder / "per-sequence_results-check.csv").write_text("\n".join(lines) + "\n")
    j = np.mean([jf[0] for jf in per_video.values()])
    f = np.mean([jf[1] for jf in per_video.values()])
    (folder / "run.json").write_text(json.dumps({"global": {"J&F-Mean": (j + f) / 2, "J-Mean": j, "F-Mean": f}}))


def test_order_checks_by_hand():
    means = np.array([0.60, 0.596, 0.58, 0.64])
    checks = dict(fold_seeds.order_checks(means, tolerance=0.005, margin=0.03, full_row=3))
    assert checks == {"row 1 >= row 0 - 0.005": True, "row 2 >= row 1 - 0.005": False,
                      "row 3 >= row 2 - 0.005": True, "row 3 >= row 0 + 0.03": True}
    assert not dict(fold_seeds.order_checks(means, 0.005, 0.05, 3))["row 3 >= row 0 + 0.05"]


def test_row_differences_per_training():
    scores = np.array([[0.6, 0.7], [0.5, 0.9], [0.55, 0.9]])
    np.testing.assert_allclose(fold_seeds.row_differences(scores), [[-0.1, 0.2], [0.05, 0.0]])


def test_standard_error_by_hand():
    # differences -0.014, -0.005, -0.004: mean -0.00767, sd 0.00551, se 0.00318
    np.testing.assert_allclose(fold_seeds.standard_error(np.array([[-0.014, -0.005, -0.004]])), [0.0031798],
                               rtol=1e-4)
    assert np.isnan(fold_seeds.standard_error(np.array([[0.1]]))).all()


def test_table_over_trainings(tmp_path, monkeypatch, capsys):
    # baseline: 0.5 and 0.7 -> mean 0.6; motion: 0.4 and 0.9 -> mean 0.65 (one training drops, the other gains)
    write_run(tmp_path / "s0__base", {"a": (0.6, 0.4), "b": (0.5, 0.5)})
    write_run(tmp_path / "s1__base", {"a": (0.7, 0.7), "b": (0.7, 0.7)})
    write_run(tmp_path / "s0__motion", {"a": (0.2, 0.2), "b": (0.6, 0.6)})
    write_run(tmp_path / "s1__motion", {"a": (0.9, 0.9), "b": (0.9, 0.9)})
    monkeypatch.setattr(sys, "argv", ["fold_seeds.py", "--runs", str(tmp_path / "s0"), str(tmp_path / "s1"),
                                      "--rows", "base", "motion", "--full-row", "1"])
    fold_seeds.main()
    out = capsys.readouterr().out
    assert "| base | 0.500 | 0.700 | **0.600** | 0.200 |" in out
    assert "| motion | 0.400 | 0.900 | **0.650** | 0.500 |" in out
    assert "| motion - base | -0.100 | +0.200 | **+0.050** | 0.150 |" in out  # sd 0.212 / sqrt(2)
    assert "| a | 0.600 | 0.550 |" in out  # per video: base (0.5 + 0.7) / 2, motion (0.2 + 0.9) / 2
    assert "- row 1 >= row 0 - 0.005 (means): met" in out
    assert "- row 1 >= row 0 + 0.03 (means): met" in out


def test_unfinished_run_is_named(tmp_path):
    (tmp_path / "s0__base").mkdir()
    with pytest.raises(FileNotFoundError, match="s0__base: no per-sequence"):
        fold_seeds.sequence_scores(tmp_path / "s0__base")
