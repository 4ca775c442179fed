"""`stg compare`: the printed table, the HTML page (sorted deltas, frames that differ most, self-contained) and
its errors, on two run folders scored by the real `stg metrics` from a tiny synthetic dataset."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from stg.cli import main
from stg.palette import read_png_labels, write_palette_png

DAMAGED_VIDEO, DAMAGED_FRAME = 0, 3  # run B loses every mask of this frame, and object 2's of the next one
BLURRED_VIDEO = 1  # run A has this video's masks eroded on every frame


def _erode(labels: np.ndarray) -> np.ndarray:
    """Every object shrunk by 2 pixels (its border with the background and other objects cleared)."""
    kernel = np.ones((5, 5), np.uint8)
    out = labels.copy()
    out[(cv2.erode(labels, kernel) != labels) | (cv2.dilate(labels, kernel) != labels)] = 0
    return out


def _make_run(root: Path, videos: list[str], run: Path, change) -> None:
    """Ground truth as results, changed by change(video index, frame index, labels), scored by `stg metrics`."""
    for v, video in enumerate(videos):
        folder = run / "Annotations" / video
        folder.mkdir(parents=True)
        for f, png in enumerate(sorted((root / "Annotations" / "480p" / video).glob("*.png"))):
            labels, _ = read_png_labels(png)
            write_palette_png(folder / png.name, change(v, f, labels.astype(np.uint8)))
    assert main(["metrics", "--davis-root", str(root), "--results", str(run / "Annotations"), "--set", "val",
                 "--out", str(run), "--processes", "1"]) == 0
    (run / "run.json").write_text(json.dumps({
        "run": run.name, "dataset": "demo", "dataset_root": str(root), "split": "val", "variant": run.name,
        "method": "propagate", "videos": videos, "created": "2026-01-01T00:00:00+0000"}))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path, list[str]]:
    from stg.datasets.synthetic import generate

    root = tmp_path_factory.mktemp("compare_data") / "data"
    videos = generate(root, seed=3, num_videos=2, frames=(8, 10), height=120, width=214, split="val")
    results = tmp_path_factory.mktemp("compare_results")
    _make_run(root, videos, results / "A", lambda v, f, labels: _erode(labels) if v == BLURRED_VIDEO else labels)
    def damage(v: int, f: int, labels: np.ndarray) -> np.ndarray:
        if (v, f) == (DAMAGED_VIDEO, DAMAGED_FRAME):
            return np.zeros_like(labels)
        if (v, f) == (DAMAGED_VIDEO, DAMAGED_FRAME + 1):
            assert (labels == 2).any()
            return np.where(labels == 2, np.uint8(0), labels)
        return labels

    _make_run(root, videos, results / "B", damage)
    return root, results / "A", results / "B", videos


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _compare(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_table_and_page(runs, tmp_path, capsys):
    root, a, b, videos = runs
    out = tmp_path / "page" / "compare.html"
    code, printed, _ = _compare(capsys, str(a), str(b), "--out", str(out))
    assert code == 0

    # the printed table: the global CSVs' means, and B minus A
    lines = printed.strip().splitlines()
    assert lines[0].split() == ["run", "J&F-Mean", "J-Mean", "F-Mean", "dJ&F-Mean", "dJ-Mean", "dF-Mean"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert list(rows) == ["A", "B"]
    means = {name: _csv(folder / "global_results-val.csv")[0] for name, folder in (("A", a), ("B", b))}
    for name in ("A", "B"):
        assert [float(x) for x in rows[name][:3]] == [float(means[name][c]) for c in ("J&F-Mean", "J-Mean", "F-Mean")]
    assert rows["A"][3:] == ["reference"]
    assert [float(x) for x in rows["B"][3:]] == pytest.approx(
        [float(means["B"][c]) - float(means["A"][c]) for c in ("J&F-Mean", "J-Mean", "F-Mean")], abs=1e-9)

    page = out.read_text()
    # self-contained: nothing fetched, every image an embedded PNG/JPEG
    assert "http://" not in page and "https://" not in page and "<script" not in page.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:)""", page)
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert sources
    for src in sources:
        match = re.fullmatch(r"data:image/(?:png|jpeg);base64,([A-Za-z0-9+/=]+)", src)
        assert match, src[:60]
        Image.open(io.BytesIO(base64.b64decode(match.group(1)))).load()

    # per-sequence deltas: the per-sequence CSVs' J&F (mean of J and F), B minus A, largest gain first
    rows_a = {r["Sequence"]: r for r in _csv(a / "per-sequence_results-val.csv")}
    rows_b = {r["Sequence"]: r for r in _csv(b / "per-sequence_results-val.csv")}

    def jf(row: dict[str, str]) -> float:
        return (float(row["J-Mean"]) + float(row["F-Mean"])) / 2

    delta = {name: jf(rows_b[name]) - jf(rows_a[name]) for name in rows_a}
    expected = sorted(delta, key=lambda name: -delta[name])
    assert len({round(value, 6) for value in delta.values()}) == len(delta) == 4  # no ties: the order is the sort's
    assert delta[expected[0]] > 0 > delta[expected[-1]]              # A's eroded video is B's gain, B's damage a loss
    assert expected[0].startswith(videos[BLURRED_VIDEO]) and expected[-1].startswith(videos[DAMAGED_VIDEO])
    table = page.split('<div class="deltas" id="deltas-1">', 1)[1].split("</div>", 1)[0]
    assert re.findall(r'<tr><td class="l">([^<]+)</td>', table) == expected
    for name in expected:
        assert f"{delta[name]:+.3f}" in table

    # the frame with the largest J difference is the one B lost, drawn with A's masks, B's and the ground truth
    damaged = sorted((root / "JPEGImages" / "480p" / videos[DAMAGED_VIDEO]).glob("*.jpg"))[DAMAGED_FRAME].stem
    titles = re.findall(r"<h4>(.*?)</h4>", page)
    assert 1 <= len(titles) <= 6
    assert titles[0].startswith(f"{videos[DAMAGED_VIDEO]} frame {damaged}: J 1.000 (A) vs 0.000 (B)")
    first = page.split("<h4>", 2)[1]
    assert first.count("<img") == 3 and "A: J 1.000" in first and "B: J 0.000" in first and "ground truth" in first


def test_per_frame_j_from_the_masks_when_metrics_json_has_none(runs, tmp_path, capsys):
    root, a, b, videos = runs
    copy = tmp_path / "B"
    shutil.copytree(b, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    del metrics["per_frame"]
    (copy / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "compare.html"
    assert _compare(capsys, str(a), str(copy), "--out", str(out), "--frames", "2")[0] == 0
    titles = re.findall(r"<h4>(.*?)</h4>", out.read_text())
    damaged = sorted((root / "JPEGImages" / "480p" / videos[DAMAGED_VIDEO]).glob("*.jpg"))[DAMAGED_FRAME].stem
    assert len(titles) == 2 and titles[0].startswith(f"{videos[DAMAGED_VIDEO]} frame {damaged}: J 1.000 (A) vs 0.000")


def test_three_runs_and_no_frames(runs, tmp_path, capsys):
    _, a, b, _ = runs
    copy = tmp_path / "C"
    shutil.copytree(a, copy)
    out = tmp_path / "compare.html"
    code, printed, _ = _compare(capsys, str(a), str(b), str(copy), "--out", str(out), "--frames", "0")
    assert code == 0
    assert [line.split()[0] for line in printed.strip().splitlines()[1:]] == ["A", "B", "C"]
    assert printed.strip().splitlines()[-1].split()[-3:] == ["+0.000"] * 3  # C is A
    page = out.read_text()
    assert 'id="deltas-2"' in page and "<h4>" not in page


def _expect_error(capsys, out: Path, *runs: Path, words: tuple[str, ...]) -> str:
    code, printed, err = _compare(capsys, *map(str, runs), "--out", str(out))
    assert code == 2 and printed == ""
    message = err.strip().splitlines()[-1]
    assert message.startswith("stg compare: error: ") and "Traceback" not in err
    for word in words:
        assert word in message, message
    assert out.read_text() == "old page"  # never replaced, never half written
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    return message


def test_errors(runs, tmp_path, capsys):
    _, a, b, _ = runs
    out = tmp_path / "page" / "compare.html"
    out.parent.mkdir()
    out.write_text("old page")

    other_root = tmp_path / "other_root"
    shutil.copytree(b, other_root_run := tmp_path / "elsewhere")
    info = json.loads((other_root_run / "run.json").read_text())
    (other_root_run / "run.json").write_text(json.dumps({**info, "dataset_root": str(other_root)}))
    _expect_error(capsys, out, a, other_root_run, words=(str(a), str(other_root_run), "different datasets or splits"))

    other_split = tmp_path / "train_run"
    shutil.copytree(b, other_split)
    (other_split / "run.json").write_text(json.dumps({**info, "split": "train"}))
    for kind in ("global", "per-sequence"):
        (other_split / f"{kind}_results-val.csv").rename(other_split / f"{kind}_results-train.csv")
    _expect_error(capsys, out, a, other_split, words=(str(other_split), "split 'train'", "split 'val'"))

    fewer = tmp_path / "fewer"
    shutil.copytree(b, fewer)
    rows = (fewer / "per-sequence_results-val.csv").read_text().splitlines()
    dropped = rows.pop(1).split(",")[0]
    (fewer / "per-sequence_results-val.csv").write_text("\n".join(rows) + "\n")
    _expect_error(capsys, out, a, fewer, words=(str(a), str(fewer), "different sequences", dropped))

    for missing in ("global_results-val.csv", "per-sequence_results-val.csv", "metrics.json", "run.json"):
        broken = tmp_path / f"without-{missing}"
        shutil.copytree(b, broken)
        (broken / missing).unlink()
        _expect_error(capsys, out, a, broken, words=(str(broken / missing), "missing"))

    _expect_error(capsys, out, a, tmp_path / "nowhere", words=(str(tmp_path / "nowhere"), "run folder is missing"))

    code, _, err = _compare(capsys, str(a), str(b), "--out", str(out), "--frames", "-1")
    assert code == 2 and "--frames: must be 0 or more" in err and out.read_text() == "old page"

    with pytest.raises(SystemExit) as usage:  # one run: argparse's usage error
        main(["compare", str(a), "--out", str(out)])
    assert usage.value.code == 2 and "usage: stg compare" in capsys.readouterr().err
    assert out.read_text() == "old page"


def test_no_file_when_rendering_fails(runs, tmp_path, capsys, monkeypatch):
    _, a, b, _ = runs
    import stg.compare

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stg.compare, "render_compare", broken)
    out = tmp_path / "compare.html"
    code, _, err = _compare(capsys, str(a), str(b), "--out", str(out))
    assert code == 2 and "No space left on device" in err
    assert list(tmp_path.iterdir()) == []


def test_page_in_chromium(runs, tmp_path, capsys):
    """Opened in headless Chromium: every image loads, nothing but the file is fetched (skips without chromium)."""
    from test_report import artifacts, check_in_browser

    _, a, b, _ = runs
    out = tmp_path / "compare.html"
    assert _compare(capsys, str(a), str(b), "--out", str(out))[0] == 0
    check_in_browser(out, artifacts(tmp_path) / "compare.png", tmp_path)
