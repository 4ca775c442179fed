"""results/<run>/report.html: content and self-containment, and a real headless Chromium showing it whole.

The browser tests need Debian's chromium + chromedriver (.ci/install_chromium.sh) and selenium (the
[test] extra). They skip when those are absent, unless STG_REQUIRE_CHROMIUM=1 (CI), which makes that
a failure. Screenshots are kept in $STG_TEST_ARTIFACTS (default: the test's temporary folder).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stg.palette import davis_palette
from stg.report import overlay, pick_frames, render_report, write_html_report

REPO = Path(__file__).resolve().parents[1]
IMG_SRC = re.compile(r'<img src="([^"]*)"')
DATA_URI = re.compile(r"data:(image/(?:png|jpeg));base64,([A-Za-z0-9+/=]+)")

TIMING = {"flow": {"jobs": 2, "wall_s": 3.5, "cpu_s": 2.0, "peak_rss_mb": 140.0},
          "warp": {"jobs": 2, "wall_s": 1.5, "cpu_s": 1.0, "peak_rss_mb": 110.0},
          "results": {"jobs": 1, "wall_s": 0.8, "cpu_s": 0.7, "peak_rss_mb": 95.0}}
DEMO_CONFIG = REPO / ".test" / "config" / "config.yaml"  # the tests' reduced demo
PROPOSALS = {"videos": {"synth00-occlusion": {"video": "synth00-occlusion", "frames": 9, "object_frames": 16,
                                              "mean_proposals_per_frame": 7.25, "recall": 0.8125,
                                              "oracle_j": 0.734}},
             "overall": {"videos": 1, "object_frames": 16, "mean_proposals_per_frame": 7.25, "recall": 0.8125,
                         "oracle_j": 0.734, "iou_threshold": 0.5},
             "without_ground_truth": ["synth01-exit"]}


# ------------------------------------------------------------------ a run folder made by hand (fast)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> tuple[Path, Path]:
    """A run folder whose 'results' are the ground truth itself, scored by the real metrics code."""
    from stg.datasets.synthetic import generate
    from stg.metrics.evaluate import run_metrics

    root = tmp_path_factory.mktemp("report_data") / "data"
    videos = generate(root, seed=3, num_videos=2, frames=(8, 10), height=120, width=214, split="val")
    run = tmp_path_factory.mktemp("report_run") / "demo_val"
    for video in videos:
        shutil.copytree(root / "Annotations" / "480p" / video, run / "Annotations" / video)
    run_metrics(root, run / "Annotations", "val", run, processes=1)
    (run / "run.json").write_text(json.dumps({
        "run": "demo_val", "dataset": "demo", "split": "val", "variant": "propagate", "method": "propagate",
        "videos": videos, "keys": {"flow": "0123456789"}, "timing": TIMING, "settings": {"flow": {"backend": "dis"}},
        "packages": {"stg-vos": "0.1.0"}, "created": "2026-01-01T00:00:00+0000"}))
    return run, root


def images(page: str) -> list[tuple[str, Image.Image]]:
    """(mime, decoded image) of every <img>; fails on one that is not an embedded PNG/JPEG."""
    decoded = []
    for src in IMG_SRC.findall(page):
        match = DATA_URI.fullmatch(src)
        assert match, f"image not embedded as a PNG/JPEG data: URI: {src[:80]}"
        image = Image.open(io.BytesIO(base64.b64decode(match.group(2))))
        image.load()
        decoded.append((match.group(1), image))
    return decoded


def test_overlay_blends_davis_colours_and_outlines_objects():
    frame = np.full((40, 60, 3), 100, np.uint8)
    labels = np.zeros((40, 60), np.uint8)
    labels[10:30, 10:30] = 1
    labels[10:30, 40:50] = 2
    out = overlay(frame, labels, width=60)
    red, green = davis_palette()[1].astype(int), davis_palette()[2].astype(int)
    np.testing.assert_array_equal(out[20, 20], (100 + red) // 2)      # inside object 1: half its colour
    np.testing.assert_array_equal(out[20, 45], (100 + green) // 2)
    np.testing.assert_array_equal(out[10, 20], red)                   # its outline: solid colour
    np.testing.assert_array_equal(out[5, 5], [100, 100, 100])         # background untouched
    assert overlay(np.zeros((480, 854, 3), np.uint8), np.zeros((480, 854), np.uint8)).shape == (180, 320, 3)


def test_pick_frames():
    assert pick_frames(["a", "b", "c", "d", "e"]) == ["a", "c", "e"]
    assert pick_frames(["a", "b"]) == ["a", "b"]
    assert pick_frames(["a"]) == ["a"]
    assert pick_frames([]) == []


def test_report_is_complete_and_self_contained(run_folder):
    run, root = run_folder
    page = render_report(run, root, "val")
    assert "<script" not in page.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:|#)""", page), "the report refers to an outside file"
    assert not re.search(r"url\((?!data:)", page)
    metrics = json.loads((run / "metrics.json").read_text())
    videos = json.loads((run / "run.json").read_text())["videos"]
    decoded = images(page)
    # J/F bars + one J-per-frame chart per sequence + 3 overlays per video + the timing chart
    assert len(decoded) == 1 + len(videos) + 3 * len(videos) + 1
    assert all(image.width > 50 and image.height > 50 for _, image in decoded)
    assert [mime for mime, _ in decoded].count("image/jpeg") == 3 * len(videos)
    assert f"{metrics['global']['J&F-Mean']:.3f}" in page and "J&amp;F-Mean" in page
    for name in metrics["objects"]:
        assert name in page
    assert "not part of this run" in page                              # no proposals.json
    for stage, numbers in TIMING.items():
        assert re.search(rf"<td class=\"l\">{stage}</td><td class=\"\">{numbers['jobs']}</td>", page)


def test_overlay_shows_the_run_masks_over_the_frames(run_folder):
    """The middle overlay of a video, decoded from the page, is the frame with its masks drawn in."""
    from stg.datasets import read_frame
    from stg.palette import read_png_labels

    run, root = run_folder
    video = json.loads((run / "run.json").read_text())["videos"][0]
    names = sorted(p.stem for p in (run / "Annotations" / video).glob("*.png"))
    middle = pick_frames(names)[1]
    labels, _ = read_png_labels(run / "Annotations" / video / f"{middle}.png")
    expected = overlay(read_frame(root / "JPEGImages" / "480p" / video / f"{middle}.jpg"), labels)
    jpegs = [image for mime, image in images(render_report(run, root, "val")) if mime == "image/jpeg"]
    shown = np.asarray(jpegs[1].convert("RGB"), dtype=np.int16)
    assert shown.shape == expected.shape
    assert np.abs(shown - expected).mean() < 4                          # JPEG re-encoding only
    assert np.abs(shown - read_frame(root / "JPEGImages" / "480p" / video / f"{middle}.jpg")).mean() > 4


def test_proposal_section_from_proposals_json(run_folder, tmp_path):
    run, root = run_folder
    copy = tmp_path / "demo_val"
    shutil.copytree(run, copy)
    (copy / "proposals.json").write_text(json.dumps(PROPOSALS))
    page = render_report(copy, root, "val")
    assert "not part of this run" not in page
    assert "0.812" in page and "0.734" in page and "7.250" in page      # recall, oracle J, proposals per frame
    assert "synth01-exit" in page.split("Proposals", 1)[1]              # listed as having no ground truth


def test_missing_dataset_degrades_to_a_note(run_folder, tmp_path):
    run, _ = run_folder
    page = render_report(run, tmp_path / "nowhere", "val")
    assert "dataset not readable here" in page
    assert len(images(page)) == 1 + 2 + 1  # charts only


# ------------------------------------------------------------------ a real browser


def browser(tmp_path: Path):
    """Selenium driving Debian's chromium through its chromedriver; skip or fail when they are missing."""
    required = os.environ.get("STG_REQUIRE_CHROMIUM") == "1"

    def unavailable(reason: str):
        if required:
            pytest.fail(f"STG_REQUIRE_CHROMIUM=1 but {reason}")
        pytest.skip(reason)

    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        unavailable("chromium and chromedriver not found (bash .ci/install_chromium.sh)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1280,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver_path))


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("STG_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_in_browser(report: Path, screenshot: Path, tmp_path: Path) -> None:
    """Every image decodes, nothing but the file itself is fetched, no console errors; keep a full-page shot."""
    driver = browser(tmp_path)
    try:
        driver.get(report.resolve().as_uri())  # the start page before it has its own requests
        state = driver.execute_script(
            "return {ready: document.readyState, scripts: document.scripts.length,"
            " images: [...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]),"
            " height: document.documentElement.scrollHeight}")
        console = driver.get_log("browser")
        requests = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    finally:
        driver.quit()
    page = report.read_text()
    assert state["ready"] == "complete" and state["scripts"] == 0
    assert len(state["images"]) == len(IMG_SRC.findall(page)) > 0
    broken = [alt for alt, complete, width, height in state["images"] if not (complete and width > 0 and height > 0)]
    assert not broken, f"images that did not load: {broken}"
    assert not [entry for entry in console if entry["level"] in ("SEVERE", "WARNING")], console
    uri = report.resolve().as_uri()
    urls = [m["params"]["request"]["url"] for m in requests
            if m.get("method") == "Network.requestWillBeSent" and m["params"].get("documentURL") == uri]
    assert uri in urls
    outside = [url for url in urls if not url.startswith(("file:", "data:"))]
    assert not outside, f"the report fetched {outside}"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    with Image.open(screenshot) as image:
        assert image.height >= min(state["height"], 16_000) * 0.9          # the whole page, not one screen
        assert np.asarray(image.convert("L")).std() > 10                  # not blank


def test_hand_made_report_in_chromium(run_folder, tmp_path):
    run, root = run_folder
    copy = tmp_path / "demo_val"
    shutil.copytree(run, copy)
    (copy / "proposals.json").write_text(json.dumps(PROPOSALS))
    check_in_browser(write_html_report(copy, root, "val"), artifacts(tmp_path) / "report-hand-made.png", tmp_path)


@pytest.mark.slow
def test_pipeline_report_in_chromium(tmp_path):
    """The report the workflow's metrics rule writes into results/<run>/, opened in Chromium."""
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    shutil.copy(DEMO_CONFIG, tmp_path / "test.yaml")
    result = subprocess.run([sys.executable, "-m", "snakemake", "results/demo_val", "-s", str(REPO / "Snakefile"),
                             "-d", str(tmp_path), "--cores", "2", "--configfile", str(tmp_path / "test.yaml")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = tmp_path / "results" / "demo_val" / "report.html"
    page = report.read_text()
    assert "<h2>Time and memory per stage</h2>" in page
    run = json.loads((report.parent / "run.json").read_text())
    if (report.parent / "proposals.json").is_file():  # the default variant has a segment stage
        overall = json.loads((report.parent / "proposals.json").read_text())["overall"]
        assert "segment" in run["keys"] and "not part of this run" not in page
        assert f"{overall['recall']:.3f}" in page.split("<h2>Proposals</h2>", 1)[1]
    else:
        assert "segment" not in run["keys"] and "not part of this run" in page
    check_in_browser(report, artifacts(tmp_path) / "report-demo.png", tmp_path)
