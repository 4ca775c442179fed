"""Video names reach the shell quoted: names with spaces, unicode, quotes and `$(...)` run end to end, and names that
cannot be a folder or an argument are rejected when the split file is read, naming the file and the name."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from workflow_helpers import REPO, make_workdir, snakemake

from stg.datasets import open_dataset
from stg.datasets.names import MAX_NAME_BYTES, check_video_name, name_problem
from stg.errors import InputError

# Every character class the shell would otherwise interpret or split on; `PWNED` must never appear.
ODD_NAMES = ["a b", "ünï", "it's \"q\"", "v$(touch PWNED)"]
BAD_NAMES = {
    "a/b": "contains '/'",
    "-x": "starts with '-'",
    ".": "'.' and '..'",
    "..": "'.' and '..'",
    "": "empty",
    "a\nb": "NUL or newline",
    "a\x00b": "NUL or newline",
    "a\x1bb": "control character",
    "a{x}": "'{' or '}'",
    "v" * (MAX_NAME_BYTES + 1): "bytes long",
}


def write_split(root: Path, lines: list[str], layout: str = "davis2017") -> Path:
    folder = root / "ImageSets" / ("2017" if layout == "davis2017" else "480p")
    folder.mkdir(parents=True, exist_ok=True)
    split_file = folder / "val.txt"
    split_file.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return split_file


@pytest.mark.parametrize("name", [*ODD_NAMES, "synth00-occlusion", ".hidden", "x-", "*;&|<>`[]\\!#~%"])
def test_odd_but_valid_names_are_accepted(name):
    assert name_problem(name) is None
    assert check_video_name(name, "val.txt") == name


@pytest.mark.parametrize("name,problem", BAD_NAMES.items(), ids=lambda value: repr(value)[:12])
def test_bad_names_are_rejected_naming_file_and_name(name, problem):
    with pytest.raises(InputError) as raised:
        check_video_name(name, "ImageSets/2017/val.txt")
    message = str(raised.value)
    assert message.startswith("ImageSets/2017/val.txt: ")
    assert repr(name) in message and problem in message


@pytest.mark.parametrize("name,problem", [("a/b", "contains '/'"), ("-rf", "starts with '-'"), ("..", "'..'")])
def test_davis2017_split_file_with_a_bad_name_is_rejected(tmp_path, name, problem):
    split_file = write_split(tmp_path, ["fine", name])
    with pytest.raises(InputError) as raised:
        open_dataset(tmp_path, "davis2017", "val").video_names()
    message = str(raised.value)
    assert str(split_file) in message and repr(name) in message and problem in message


def test_davis2016_names_come_from_frame_paths_and_are_checked(tmp_path):
    """DAVIS 2016 lines are `<frame> <mask>`: the name is the frame's folder, which may be '..' or missing."""
    write_split(tmp_path, ["/JPEGImages/480p/cow/00000.jpg /Annotations/480p/cow/00000.png"], "davis2016")
    assert open_dataset(tmp_path, "davis2016", "val").video_names() == ["cow"]
    for line, problem in [("/JPEGImages/480p/../00000.jpg /x.png", "'..'"), ("/00000.jpg /x.png", "empty")]:
        split_file = write_split(tmp_path, [line], "davis2016")
        with pytest.raises(InputError) as raised:
            open_dataset(tmp_path, "davis2016", "val").video_names()
        assert str(split_file) in str(raised.value) and problem in str(raised.value)


def test_blank_lines_and_surrounding_spaces_are_skipped(tmp_path):
    write_split(tmp_path, ["", "  a b  ", "   ", "ünï"])
    assert open_dataset(tmp_path, "davis2017", "val").video_names() == ["a b", "ünï"]


def test_split_file_that_is_not_utf8_is_an_input_error(tmp_path):
    split_file = write_split(tmp_path, ["x"])
    split_file.write_bytes(b"caf\xe9\n")
    with pytest.raises(InputError) as raised:
        open_dataset(tmp_path, "davis2017", "val").video_names()
    assert str(split_file) in str(raised.value) and "UTF-8" in str(raised.value)


# ----------------------------------------------------------------------------------------------- the workflow


def renamed_dataset(root: Path, names: list[str]) -> Path:
    """A tiny synthetic DAVIS 2017 dataset whose videos (folders and split file) carry `names`."""
    from stg.datasets.synthetic import generate

    generated = generate(root, seed=5, num_videos=len(names), frames=(6, 7), height=96, width=160, split="val")
    for old, new in zip(generated, names, strict=True):
        for kind in ("JPEGImages", "Annotations"):
            (root / kind / "480p" / old).rename(root / kind / "480p" / new)
    write_split(root, names)
    return root


def names_workdir(base: Path, names: list[str]) -> Path:
    """A Snakemake folder whose dataset `names` (root with a space and unicode in its path) lists `names`."""
    root = renamed_dataset(base / "data root ü", names)
    workdir = base / "work"
    make_workdir(workdir, {
        "datasets": {"names": {"layout": "davis2017", "root": str(root), "resolution": "480p", "splits": ["val"]}},
        # every rule of the learned and weight-free chains, refinement passes included, for the dry-run check
        "variants": {"twopass": {"method": "graph", "description": "cached proposals, two passes",
                                 "stages": {"detect": {"backend": "motion"}, "segment": {"backend": "grabcut"},
                                            "graph": {"proposals": "cached", "passes": 2}}}},
    })
    return workdir


def assert_no_pwned(*folders: Path) -> None:
    for folder in {REPO, Path.cwd(), *folders}:
        assert not (folder / "PWNED").exists(), folder
    for folder in folders:
        assert not list(folder.rglob("PWNED")), folder


def test_every_rule_passes_each_name_as_one_argument(tmp_path):
    """Dry run of every chain: each printed shell command splits (as the shell would) into exactly the name,
    the dataset root and the stores, with nothing left over."""
    workdir = names_workdir(tmp_path, ODD_NAMES)
    root = str(tmp_path / "data root ü")
    targets = ["results/names_val__propagate", "results/names_val__twopass", "results/names_val"]
    result = snakemake(workdir, "-n", "-p", *targets)
    commands = [shlex.split(line.removeprefix("Shell command: "))
                for line in result.stdout.splitlines() if line.startswith("Shell command: ")]
    rules = {argv[1] for argv in commands}
    assert {"flow", "warp", "propagate", "detect", "segment", "graph", "online-learn", "results"} <= rules
    for argv in commands:
        if argv[1] == "results":  # lists of stores: below
            continue
        options = dict(zip(argv[2::2], argv[3::2], strict=True))  # every other stg option takes one value
        assert all(option.startswith("--") for option in list(options)[:-1]), argv
        assert argv[-2] == "2>" and argv[-1].endswith(".log")
        if "--video" in argv:
            video = argv[argv.index("--video") + 1]
            assert video in ODD_NAMES
            assert options["--dataset-root"] == root
            assert options["--out"].endswith(f"/{video}" if argv[1] == "online-learn" else f"/{video}.zarr")
            for role in ("--warp", "--flow", "--detect", "--segment", "--previous-labels"):
                if role in argv:
                    assert argv[argv.index(role) + 1].endswith(f"/{video}.zarr"), (role, argv)
            if "--online-model" in argv:
                assert argv[argv.index("--online-model") + 1].endswith(f"/{video}"), argv
        else:
            assert argv[1] == "propagate"
            assert any(options["--warp"].endswith(f"/{name}.zarr") for name in ODD_NAMES)
    assert any("--previous-labels" in argv for argv in commands), "the second pass's warp is planned"
    for argv in (argv for argv in commands if argv[1] == "results"):
        labels = argv[argv.index("--labels") + 1:argv.index("--plan")]
        assert sorted(Path(label).name for label in labels) == sorted(f"{name}.zarr" for name in ODD_NAMES)
        assert argv[argv.index("--dataset-root") + 1] == root
    assert_no_pwned(tmp_path)


def test_odd_names_run_end_to_end(tmp_path):
    """The propagate chain (flow, warp, propagate, results) on four videos with odd names, dataset root with a
    space: every name has its results, and the `$(touch PWNED)` name ran nothing."""
    workdir = names_workdir(tmp_path, ODD_NAMES)
    snakemake(workdir, "results/names_val__propagate")
    run = workdir / "results" / "names_val__propagate"
    for name in ODD_NAMES:
        assert len(list((run / "Annotations" / name).glob("*.png"))) >= 6, name
    scores = json.loads((run / "metrics.json").read_text())
    assert scores["global"]["J&F-Mean"] > 0.3
    assert_no_pwned(tmp_path)


def test_a_bad_name_stops_the_workflow_at_parse_time(tmp_path):
    workdir = names_workdir(tmp_path, ["fine"])
    split_file = tmp_path / "data root ü" / "ImageSets" / "2017" / "val.txt"
    split_file.write_text("fine\nsub/dir\n")
    result = snakemake(workdir, "-n", "results/names_val__propagate", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert str(split_file) in output and "'sub/dir' cannot be used: contains '/'" in output
