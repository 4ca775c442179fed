"""stg.metrics end to end: agreement with a plain evaluator, errors, PNG decoding, outputs, run_metrics."""

from __future__ import annotations

import io
import json
import shutil
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import stg.metrics.decode as decode_module
import stg.metrics.reading as reading_module
from stg.errors import InputError
from stg.metrics.decode import fast_png_labels, read_labels_once
from stg.metrics.evaluate import run_metrics
from stg.metrics.evaluation import evaluate
from stg.metrics.tables import GLOBAL_COLUMNS, format_global_table, global_csv, sequence_csv, write_outputs
from stg.palette import write_palette_png

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from naive_davis_eval import max_difference, naive_evaluate  # noqa: E402

REAL_DAVIS2016 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016-train"


# ---------------------------------------------------------------- synthetic DAVIS folders


def blob(shape: tuple[int, int], rng: np.random.Generator, fill: float) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), max(2.0, shape[0] / 12))
    return noise > np.quantile(noise, 1 - fill)


def structured_sequence(shape: tuple[int, int], frames: int, rng: np.random.Generator) -> tuple[list, list]:
    """GT and result label maps with 3 objects: a moving blob, a rectangle, a thin line.

    GT has void (255) pixels and frames where object 2 is absent; the result misses object 3
    entirely, shifts the blob and touches the image border.
    """
    height, width = shape
    gts, results = [], []
    base = blob(shape, rng, 0.2)
    for index in range(frames):
        gt = np.zeros(shape, np.uint8)
        gt[np.roll(base, index, axis=1)] = 1
        if index % 3 != 1:
            gt[3 + index:height // 2, width // 2:width - 2] = 2
        gt[height - 5, 4:width - 4] = 3
        gt[:2, :5] = 255
        res = np.zeros(shape, np.uint8)
        res[np.roll(base, index + 2, axis=(0, 1))] = 1
        res[height // 4:height, width // 2 + index:] = 2
        if index == frames - 2:
            res[:] = 0
        gts.append(gt)
        results.append(res)
    return gts, results


def single_object_sequence(shape: tuple[int, int], frames: int, rng: np.random.Generator) -> tuple[list, list]:
    """One object touching the bottom-right border; some result frames empty, some eroded."""
    gts, results = [], []
    for index in range(frames):
        gt = np.zeros(shape, np.uint8)
        gt[shape[0] // 3 + index:, shape[1] // 2:] = 1
        gt[blob(shape, rng, 0.05)] = 1
        res = cv2.erode(gt, np.ones((3, 3), np.uint8)) if index % 2 else np.roll(gt, 3, axis=0)
        if index == 2:
            res = np.zeros(shape, np.uint8)
        gts.append(gt)
        results.append(res.astype(np.uint8))
    return gts, results


def empty_gt_sequence(shape: tuple[int, int], frames: int, rng: np.random.Generator) -> tuple[list, list]:
    """Two objects that vanish from the GT after the first frame; the result keeps one of them."""
    gts, results = [], []
    for index in range(frames):
        gt = np.zeros(shape, np.uint8)
        if index == 0:
            gt[blob(shape, rng, 0.1)] = 1
            gt[5:9, 5:40] = 2
        res = np.zeros(shape, np.uint8)
        if index % 2 == 0:
            res[10:20, 30:50] = 2
        gts.append(gt)
        results.append(res)
    return gts, results


def write_jpeg(path: Path, shape: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*shape, 3), 90, np.uint8))


def write_davis2017(root: Path, results: Path, sequences: dict[str, tuple[list, list]], split: str = "val") -> None:
    """A DAVIS 2017-layout root (split order = dict order) and a palette-PNG results folder."""
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / f"{split}.txt").write_text("".join(f"{name}\n" for name in sequences))
    for name, (gts, ress) in sequences.items():
        for folder in (root / "Annotations" / "480p" / name, results / name):
            folder.mkdir(parents=True, exist_ok=True)
        for index, (gt, res) in enumerate(zip(gts, ress, strict=True)):
            frame = f"{index:05d}"
            write_jpeg(root / "JPEGImages" / "480p" / name / f"{frame}.jpg", gt.shape)
            write_palette_png(root / "Annotations" / "480p" / name / f"{frame}.png", gt)
            write_palette_png(results / name / f"{frame}.png", res)


@pytest.fixture(scope="module")
def davis2017(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("davis2017")
    rng = np.random.default_rng(11)
    sequences = {
        "zeta": structured_sequence((60, 90), 9, rng),
        "alpha": single_object_sequence((120, 200), 7, rng),
        "mid": empty_gt_sequence((60, 90), 6, rng),
    }
    write_davis2017(base / "DAVIS", base / "results", sequences)
    return base / "DAVIS", base / "results"


@pytest.fixture(scope="module")
def davis2017_metrics(davis2017: tuple[Path, Path]) -> dict:
    root, results = davis2017
    return evaluate(root, results, "val", processes=1, progress=False)


def write_davis2016(root: Path, results: Path, rng: np.random.Generator) -> None:
    """A DAVIS 2016-layout root with greyscale 0/255 GT written by cv2 (Sub filter), PIL and as LA."""
    lines = []
    for name, shape, frames in (("cows", (60, 90), 7), ("boat", (120, 200), 5)):
        for index in range(frames):
            frame = f"{index:05d}"
            mask = blob(shape, rng, 0.15 + 0.02 * index)
            if name == "boat" and index == 3:
                mask[:] = False
            grey = mask.astype(np.uint8) * 255
            annotation = root / "Annotations" / "480p" / name / f"{frame}.png"
            annotation.parent.mkdir(parents=True, exist_ok=True)
            if index % 3 == 0:
                cv2.imwrite(str(annotation), grey)
            elif index % 3 == 1:
                Image.fromarray(grey, "L").save(annotation)
            else:
                Image.fromarray(np.dstack([grey, np.full(shape, 255, np.uint8)]), "LA").save(annotation)
            write_jpeg(root / "JPEGImages" / "480p" / name / f"{frame}.jpg", shape)
            (results / name).mkdir(parents=True, exist_ok=True)
            write_palette_png(results / name / f"{frame}.png", np.roll(mask, (1, 2), axis=(0, 1)).astype(np.uint8))
            lines.append(f"/JPEGImages/480p/{name}/{frame}.jpg /Annotations/480p/{name}/{frame}.png\n")
    (root / "ImageSets" / "480p").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "480p" / "train.txt").write_text("".join(lines))


# ---------------------------------------------------------------- agreement with the plain evaluator


def test_davis2017_equals_plain_evaluator(davis2017: tuple[Path, Path], davis2017_metrics: dict) -> None:
    root, results = davis2017
    reference = naive_evaluate(root, results, "val", method="scipy")
    assert max_difference(davis2017_metrics, reference) <= 1e-12
    assert list(davis2017_metrics["objects"]) == ["zeta_1", "zeta_2", "zeta_3", "alpha_1", "mid_1", "mid_2"]
    assert davis2017_metrics["objects"]["zeta_3"]["J-Mean"] == 0.0  # missing from the result
    assert davis2017_metrics["per_frame"]["zeta_1"]["frames"] == [f"{i:05d}" for i in range(1, 8)]
    assert len(davis2017_metrics["per_frame"]["mid_1"]["J"]) == 4


def test_parallel_equals_inline(davis2017: tuple[Path, Path], davis2017_metrics: dict) -> None:
    root, results = davis2017
    parallel = evaluate(root, results, "val", processes=2, progress=False)
    assert parallel == davis2017_metrics


def test_davis2016_layout_equals_plain_evaluator(tmp_path: Path) -> None:
    root, results = tmp_path / "DAVIS2016", tmp_path / "results"
    write_davis2016(root, results, np.random.default_rng(5))
    metrics = evaluate(root, results, "train", processes=2, progress=False)
    reference = naive_evaluate(root, results, "train", method="scipy")
    assert max_difference(metrics, reference) <= 1e-12
    assert list(metrics["objects"]) == ["cows_1", "boat_1"]


def test_global_means_weigh_objects_equally(davis2017_metrics: dict) -> None:
    rows = davis2017_metrics["objects"].values()
    overall = davis2017_metrics["global"]
    assert overall["J-Mean"] == float(np.mean([row["J-Mean"] for row in rows]))
    assert overall["J&F-Mean"] == (overall["J-Mean"] + overall["F-Mean"]) / 2


# ---------------------------------------------------------------- reading rules


def test_first_and_last_result_frames_are_not_read(tmp_path: Path, davis2017: tuple[Path, Path],
                                                   davis2017_metrics: dict) -> None:
    root, results = davis2017
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    for name in ("zeta", "alpha", "mid"):
        frames = sorted((copy / name).glob("*.png"))
        frames[0].write_bytes(b"not a png")
        frames[-1].unlink()
    assert evaluate(root, copy, "val", processes=1, progress=False) == davis2017_metrics


def test_each_png_is_read_once(monkeypatch: pytest.MonkeyPatch, davis2017: tuple[Path, Path]) -> None:
    root, results = davis2017
    seen: list[Path] = []
    read_png_bytes = decode_module.read_png_bytes

    def counting(path: Path) -> bytes:
        seen.append(Path(path))
        return read_png_bytes(path)

    monkeypatch.setattr(decode_module, "read_png_bytes", counting)
    monkeypatch.setattr(reading_module, "read_png_bytes", counting)
    evaluate(root, results, "val", processes=1, progress=False)
    # every scored frame's two PNGs, and each sequence's first annotation (its objects); no result's first frame
    assert len(seen) == len(set(seen)) == 2 * (7 + 5 + 4) + 3
    assert sorted(path.parent.name for path in seen if path.stem == "00000") == ["alpha", "mid", "zeta"]
    assert all("Annotations" in path.parts for path in seen if path.stem == "00000")


def test_frames_go_from_png_rows_to_counts_and_the_label_map_path_agrees(monkeypatch: pytest.MonkeyPatch,
                                                                         davis2017: tuple[Path, Path],
                                                                         davis2017_metrics: dict) -> None:
    """With the compiled kernel every scored frame is counted straight from its PNG rows (png_counts); without it
    (or for a frame it does not take) the label maps are decoded and counted: the same numbers."""
    root, results = davis2017
    kernels = reading_module._kernels
    if kernels is None:
        pytest.skip("stg.metrics._kernels is not built: only the label-map path exists")
    calls: list[int] = []

    class Counting:
        def png_counts(self, *args: object) -> object:
            calls.append(1)
            return kernels.png_counts(*args)

    monkeypatch.setattr(reading_module, "_kernels", Counting())
    assert evaluate(root, results, "val", processes=1, progress=False) == davis2017_metrics
    assert len(calls) == 7 + 5 + 4
    monkeypatch.setattr(reading_module, "_kernels", None)
    assert evaluate(root, results, "val", processes=1, progress=False) == davis2017_metrics


def test_csvs_in_the_results_folder_are_ignored_and_untouched(tmp_path: Path, davis2017: tuple[Path, Path],
                                                              davis2017_metrics: dict) -> None:
    root, results = davis2017
    stale = results / "global_results-val.csv"
    stale.write_text("J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n9,9,9,9,9,9,9\n")
    try:
        metrics = evaluate(root, results, "val", processes=1, progress=False)
        write_outputs(metrics, tmp_path / "out", "val")
        assert metrics == davis2017_metrics
        assert stale.read_text().endswith("9,9,9,9,9,9,9\n")
        assert not (results / "per-sequence_results-val.csv").exists()
    finally:
        stale.unlink()


# ---------------------------------------------------------------- errors name the file


def results_copy(tmp_path: Path, results: Path) -> Path:
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    return copy


def test_label_above_k_is_an_error(tmp_path: Path, davis2017: tuple[Path, Path]) -> None:
    root, results = davis2017
    copy = results_copy(tmp_path, results)
    bad = copy / "alpha" / "00003.png"
    labels = np.zeros((120, 200), np.uint8)
    labels[5, 5] = 2
    write_palette_png(bad, labels)
    for processes in (1, 2):
        with pytest.raises(InputError, match="label 2 is above") as error:
            evaluate(root, copy, "val", processes=processes, progress=False)
        assert error.value.where == str(bad)


def test_missing_result_frame_is_an_error(tmp_path: Path, davis2017: tuple[Path, Path]) -> None:
    root, results = davis2017
    copy = results_copy(tmp_path, results)
    (copy / "mid" / "00002.png").unlink()
    with pytest.raises(InputError, match="result frame is missing") as error:
        evaluate(root, copy, "val", progress=False)
    assert error.value.where == str(copy / "mid" / "00002.png")


def test_missing_results_folders_are_errors(tmp_path: Path, davis2017: tuple[Path, Path]) -> None:
    root, results = davis2017
    with pytest.raises(InputError, match="results folder is missing"):
        evaluate(root, tmp_path / "nowhere", "val", progress=False)
    copy = results_copy(tmp_path, results)
    shutil.rmtree(copy / "alpha")
    with pytest.raises(InputError, match="result folder of sequence 'alpha' is missing") as error:
        evaluate(root, copy, "val", progress=False)
    assert error.value.where == str(copy / "alpha")


def test_size_mismatch_and_rgb_results_are_errors(tmp_path: Path, davis2017: tuple[Path, Path]) -> None:
    root, results = davis2017
    copy = results_copy(tmp_path, results)
    write_palette_png(copy / "zeta" / "00004.png", np.zeros((61, 90), np.uint8))
    with pytest.raises(InputError, match="differs from the ground truth") as error:
        evaluate(root, copy, "val", processes=1, progress=False)
    assert error.value.where == str(copy / "zeta" / "00004.png")
    Image.fromarray(np.zeros((60, 90, 3), np.uint8), "RGB").save(copy / "zeta" / "00004.png")
    with pytest.raises(InputError, match="single-channel"):
        evaluate(root, copy, "val", processes=1, progress=False)


def test_unknown_split_is_an_error(davis2017: tuple[Path, Path]) -> None:
    root, results = davis2017
    with pytest.raises(InputError, match="no split file"):
        evaluate(root, results, "test-dev", progress=False)


# ---------------------------------------------------------------- PNG decoding


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def encode_png(image: np.ndarray, filters: list[int], colour: int = 3) -> bytes:
    """An 8-bit PNG whose row y uses filter filters[y] (0 None, 1 Sub, 2 Up, 4 Paeth as None-like)."""
    height, width = image.shape
    rows, previous = [], np.zeros(width, np.int64)
    for row, kind in zip(image.astype(np.int64), filters, strict=True):
        if kind == 1:
            delta = row - np.concatenate([[0], row[:-1]])
        elif kind == 2:
            delta = row - previous
        elif kind == 4:  # Paeth on a zero row reduces to the value itself: a valid stream
            delta = row if not previous.any() else row - previous
        else:
            delta = row
        rows.append(bytes([kind]) + (delta % 256).astype(np.uint8).tobytes())
        previous = row
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    palette = png_chunk(b"PLTE", bytes(range(256)) * 3) if colour == 3 else b""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + palette
            + png_chunk(b"IDAT", zlib.compress(b"".join(rows))) + png_chunk(b"IEND", b""))


@pytest.mark.parametrize("seed", range(40))
def test_fast_png_decoder_equals_pil_for_none_sub_up_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 40, 2))
    image = np.zeros((height, width), np.uint8)
    for _ in range(4):
        top, left = int(rng.integers(0, height)), int(rng.integers(0, width))
        image[top:top + int(rng.integers(1, 12)), left:left + int(rng.integers(1, 12))] = rng.integers(0, 256)
    if seed % 4 == 0:
        image = rng.integers(0, 256, (height, width)).astype(np.uint8)
    choices = [[0], [1], [2], [0, 1], [1, 2], [0, 2], [0, 1, 2]][seed % 7]
    data = encode_png(image, [int(v) for v in rng.choice(choices, height)], colour=3 if seed % 2 else 0)
    decoded = fast_png_labels(data)
    assert decoded is not None
    with Image.open(io.BytesIO(data)) as reference:
        np.testing.assert_array_equal(decoded[0], np.asarray(reference))
        assert decoded[1] == reference.mode


def test_png_decoder_falls_back_to_pil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "_kernels", None)  # numpy's unfiltering: None, Sub and Up rows only
    image = np.zeros((6, 7), np.uint8)
    image[2:4, 1:5] = 3
    paeth = encode_png(image, [4, 0, 0, 0, 0, 0])
    assert fast_png_labels(paeth) is None
    path = tmp_path / "paeth.png"
    path.write_bytes(paeth)
    values, mode = read_labels_once(path)
    np.testing.assert_array_equal(values, image)
    assert mode == "P"
    for written in ("cv2", "pil-L", "pil-P"):
        target = tmp_path / f"{written}.png"
        if written == "cv2":
            cv2.imwrite(str(target), image * 40)
        else:
            Image.fromarray(image * 40, written[-1]).save(target)
        values, _ = read_labels_once(target)
        np.testing.assert_array_equal(values, np.asarray(Image.open(target)))


def test_unreadable_png_is_an_input_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError) as error:
        read_labels_once(broken)
    assert error.value.where == str(broken)
    with pytest.raises(InputError, match="missing"):
        read_labels_once(tmp_path / "absent.png")


# ---------------------------------------------------------------- outputs


def hand_metrics() -> dict:
    overall = dict(zip(GLOBAL_COLUMNS, (0.8125, 0.75, 0.9, -0.0004, 0.875, 1.0, 0.12345), strict=True))
    objects = {
        "zeta_1": {"J-Mean": 0.5, "J-Recall": 1.0, "J-Decay": 0.0, "F-Mean": 0.66666666, "F-Recall": 1.0,
                   "F-Decay": 0.0},
        "alpha_1": {"J-Mean": 1.0, "J-Recall": 1.0, "J-Decay": 0.0, "F-Mean": 0.0005, "F-Recall": 0.0,
                    "F-Decay": 0.0},
    }
    return {"global": overall, "objects": objects}


def test_csv_text_and_format() -> None:
    metrics = hand_metrics()
    assert global_csv(metrics) == ("J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n"
                                   "0.812,0.750,0.900,-0.000,0.875,1.000,0.123\n")
    assert sequence_csv(metrics) == "Sequence,J-Mean,F-Mean\nzeta_1,0.500,0.667\nalpha_1,1.000,0.001\n"


def test_csv_equals_pandas_float_format(davis2017_metrics: dict) -> None:
    pandas = pytest.importorskip("pandas")
    overall = pandas.DataFrame([[davis2017_metrics["global"][key] for key in GLOBAL_COLUMNS]],
                               columns=list(GLOBAL_COLUMNS))
    rows = [(name, row["J-Mean"], row["F-Mean"]) for name, row in davis2017_metrics["objects"].items()]
    per_sequence = pandas.DataFrame(rows, columns=["Sequence", "J-Mean", "F-Mean"])
    assert global_csv(davis2017_metrics) == overall.to_csv(index=False, float_format="%.3f")
    assert sequence_csv(davis2017_metrics) == per_sequence.to_csv(index=False, float_format="%.3f")


def test_write_outputs_is_complete_and_atomic(tmp_path: Path, davis2017_metrics: dict) -> None:
    out = tmp_path / "deep" / "out"
    write_outputs(davis2017_metrics, out, "val")
    assert sorted(path.name for path in out.iterdir()) == ["global_results-val.csv", "metrics.json",
                                                          "per-sequence_results-val.csv"]
    document = json.loads((out / "metrics.json").read_text())
    assert document["global"] == davis2017_metrics["global"]
    assert document["objects"] == davis2017_metrics["objects"]
    lines = (out / "per-sequence_results-val.csv").read_text().splitlines()
    assert lines[0] == "Sequence,J-Mean,F-Mean"
    assert [line.split(",")[0] for line in lines[1:]] == list(davis2017_metrics["objects"])


def test_format_global_table_and_run_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             davis2017: tuple[Path, Path], davis2017_metrics: dict) -> None:
    table = format_global_table(davis2017_metrics, "val")
    lines = table.splitlines()
    assert "Global results for val" in lines[0]
    assert lines[1].split() == list(GLOBAL_COLUMNS)
    assert float(lines[2].split()[0]) == pytest.approx(davis2017_metrics["global"]["J&F-Mean"], abs=1e-6)
    root, results = davis2017
    metrics = run_metrics(root, results, "val", tmp_path / "out", processes=1)
    assert metrics["global"] == davis2017_metrics["global"]
    assert table in capsys.readouterr().out
    assert (tmp_path / "out" / "global_results-val.csv").is_file()


def test_progress_bar_goes_to_stderr_on_a_terminal_only(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         davis2017: tuple[Path, Path]) -> None:
    root, results = davis2017
    evaluate(root, results, "val", processes=1, progress=True)  # stderr captured: not a terminal, no bar
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    evaluate(root, results, "val", processes=1, progress=True)
    captured = capsys.readouterr()
    assert "metrics" in captured.err
    assert captured.out == ""


# ---------------------------------------------------------------- real DAVIS 2016 data


@pytest.mark.skipif(not REAL_DAVIS2016.is_dir(), reason=f"real DAVIS 2016 data not found at {REAL_DAVIS2016}")
def test_real_davis2016_ground_truth_against_itself(tmp_path: Path) -> None:
    names = ("bear", "dog-agility")  # bear includes DAVIS's one greyscale+alpha mask (00077.png)
    root, results = tmp_path / "DAVIS", tmp_path / "results"
    lines = [line for line in (REAL_DAVIS2016 / "ImageSets" / "480p" / "train.txt").read_text().splitlines()
             if line.split("/")[3] in names]
    (root / "ImageSets" / "480p").mkdir(parents=True)
    (root / "ImageSets" / "480p" / "train.txt").write_text("\n".join(lines) + "\n")
    for folder in ("JPEGImages", "Annotations"):
        (root / folder / "480p").mkdir(parents=True)
        for name in names:
            (root / folder / "480p" / name).symlink_to(REAL_DAVIS2016 / folder / "480p" / name)
    for name in names:
        (results / name).mkdir(parents=True)
        for annotation in sorted((REAL_DAVIS2016 / "Annotations" / "480p" / name).glob("*.png")):
            grey = np.asarray(Image.open(annotation).convert("L"))
            write_palette_png(results / name / annotation.name, (grey > 127).astype(np.uint8))
    metrics = evaluate(root, results, "train", processes=2, progress=False)
    assert list(metrics["objects"]) == ["bear_1", "dog-agility_1"]
    for key in ("J&F-Mean", "J-Mean", "F-Mean", "J-Recall", "F-Recall"):
        assert metrics["global"][key] == 1.0
    assert metrics["global"]["J-Decay"] == 0.0 and metrics["global"]["F-Decay"] == 0.0


def test_metrics_command_parses_without_the_stage_table() -> None:
    """`stg metrics` must not pay for stg.stages (jsonschema, yaml, ...) at start-up."""
    import subprocess

    code = ("import sys; from stg.cli import build_parser, _command_word; "
            "argv = ['metrics', '--davis-root', 'r', '--results', 'x', '--set', 'val', '--out', 'o']; "
            "build_parser('metrics' if _command_word(argv) == 'metrics' else None).parse_args(argv); "
            "print('stg.stages' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               cwd=Path(__file__).resolve().parents[1])
    assert completed.stdout.strip() == "False"


def test_metrics_code_imports_no_opencv() -> None:
    """OpenCV's import is about 25 ms of `stg metrics`' start-up; only the numpy fallback path loads it, lazily."""
    import subprocess

    code = "import sys; import stg.cli, stg.metrics.evaluate, stg.metrics.evaluation; print('cv2' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               cwd=Path(__file__).resolve().parents[1])
    assert completed.stdout.strip() == "False"


def test_planning_error_after_scoring_started_cancels_and_names_the_file(tmp_path: Path,
                                                                        davis2017: tuple[Path, Path]) -> None:
    """With a pool, sequences are scored while later ones are planned: a missing result of the last sequence
    planned still fails the run with its name, and nothing is written."""
    root, results = davis2017
    copied = tmp_path / "results"
    shutil.copytree(results, copied)
    from stg.datasets import open_dataset

    last = open_dataset(root, "davis2017", "val", "480p").video_names()[-1]  # planned after the pool started
    frames = sorted((copied / last).glob("*.png"))
    frames[len(frames) // 2].unlink()
    with pytest.raises(InputError, match="result frame is missing") as error:
        run_metrics(root, copied, "val", tmp_path / "out", processes=2)
    assert last in error.value.where
    assert not (tmp_path / "out").exists()
