"""The check fold's config files (benchmarks/fold/) stay valid, and the inner fold splits foldtrain without overlap."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from stg.config import (
    DEFAULT_CONFIG_PATH,
    deep_merge,
    effective_stages,
    online_learning_steps,
    plan_run,
    validate_config,
)

FOLD = Path(__file__).resolve().parents[1] / "benchmarks" / "fold"


def _layered(*names: str) -> dict:
    config = yaml.safe_load(Path(DEFAULT_CONFIG_PATH).read_text())
    for name in names:
        config = deep_merge(config, yaml.safe_load((FOLD / name).read_text()))
    return config


@pytest.mark.parametrize("layers", [("config.yaml",), ("config.yaml", "shipped.yaml"), ("config.yaml", "inner.yaml"),
                                    ("config.yaml", "lite0.yaml")])
def test_fold_configs_validate(layers):
    validate_config(_layered(*layers), " + ".join(layers))


@pytest.mark.parametrize(("layers", "rows"), [
    (("config.yaml",), ["fold-greedy-frag25", "fold-motion-l5-frag25", "fold-spatial-trained-l5-frag25-nms60",
                        "fold-full-trained-l5-frag25-nms60-qsel", "fold-full-trained-ol-l5-frag25-nms60-qsel"]),
    ((), ["baseline", "motion", "spatial", "temporal", "temporal-ol"]),
])
def test_table4_rows_differ_by_their_component_only(layers, rows):
    """Eq. 6's lambdas and min_fragment are the same in every row, so a row's change is its component's; every row
    with the spatial graph silences near-duplicate senders alike, every row with the temporal graph warps the selected
    masks into Q (sender_nms and q_source are inert without their graph)."""
    config = _layered(*layers)
    stages = [effective_stages(config, row) for row in rows]
    graphs = [s["graph"] for s in stages]
    assert {(g["lambda1"], g["lambda2"], g["min_fragment"]) for g in graphs} == {(0.5, 0.5, 0.25)}
    switched = [(g["motion"], g["spatial"], g["temporal"]) for g in graphs]
    assert switched == [(False, False, False), (True, False, False), (True, True, False), (True, True, True),
                        (True, True, True)]
    assert [online_learning_steps(s["segment"]) > 0 for s in stages] == [False] * 4 + [True]
    assert [g["sender_nms"] for g in graphs] == [0.0, 0.0, 0.6, 0.6, 0.6]
    assert [g["q_source"] for g in graphs] == ["final"] * 3 + ["selected"] * 2


def _inner_module():
    spec = importlib.util.spec_from_file_location("make_inner_fold", FOLD / "make_inner_fold.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inner_fold_halves_foldtrain_by_sorted_video_order():
    inner = _inner_module()
    lines = [f"/JPEGImages/480p/{video}/{frame:05d}.jpg /Annotations/480p/{video}/{frame:05d}.png"
             for video in ("d", "a", "c", "b", "e") for frame in range(2)]
    splits = inner.inner_splits(lines)
    assert sorted({inner.video_of(line) for line in splits["innertrain"]}) == ["a", "c", "e"]
    assert sorted({inner.video_of(line) for line in splits["innercheck"]}) == ["b", "d"]
    assert sorted(splits["innertrain"] + splits["innercheck"]) == sorted(lines)


def test_inner_fold_rows_read_models_trained_on_innertrain(tmp_path):
    """An inner-fold row's segmenter and graph features learn from innertrain only, never from its check half."""
    config = _layered("config.yaml", "inner.yaml")
    root = tmp_path / "inner"
    (root / "ImageSets" / "480p").mkdir(parents=True)
    for split, video in (("innertrain", "a"), ("innercheck", "b")):
        (root / "ImageSets" / "480p" / f"{split}.txt").write_text(
            f"/JPEGImages/480p/{video}/00000.jpg /Annotations/480p/{video}/00000.png\n")
    config["datasets"]["davis16in"]["root"] = str(root)
    plan = plan_run(config, "davis16in", "innercheck", "fold-full-trained-l5")
    assert set(plan.models) == {"segmenter", "graph"}
    for model in plan.models.values():
        assert [(entry["dataset"], entry["split"], entry["videos"]) for entry in model.data] == [
            ("davis16in", "innertrain", ["a"])]


TABLE4_FOLD_ROWS = ["fold-greedy-frag25", "fold-motion-l5-frag25", "fold-spatial-trained-l5-frag25-nms60",
                    "fold-full-trained-l5-frag25-nms60-qsel", "fold-full-trained-ol-l5-frag25-nms60-qsel"]


def _seed_module():
    spec = importlib.util.spec_from_file_location("make_seed_fold", FOLD / "make_seed_fold.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GRAPH_WEIGHTS = "cache/models/graph/b8eeaf575a/model.pt"


@pytest.mark.parametrize("seed", [1, 4])
def test_seed_layers_retrain_only_the_segmenter(seed):
    """A seed layer changes the segmenter's seed and nothing else a Table 4 row computes: the same stage settings,
    the same training recipe, and seed 0's graph features (by path) where the row reads trained ones."""
    fold = yaml.safe_load((FOLD / "config.yaml").read_text())
    base = _layered("config.yaml")
    seeded = deep_merge(base, _seed_module().seed_overlay(fold, seed, GRAPH_WEIGHTS))
    validate_config(seeded, f"seed {seed} layer")
    dataset = f"davis16s{seed}"
    assert seeded["datasets"][dataset] == base["datasets"]["davis16tr"]
    recipe = dict(seeded["training"]["segmenter"])
    assert recipe.pop("seed") == seed
    assert recipe.pop("data") == [{"dataset": dataset, "split": "foldtrain"}]
    assert recipe.pop("validation") == [{"dataset": dataset, "split": "foldcheck"}]
    assert recipe == {k: v for k, v in base["training"]["segmenter"].items()
                      if k not in ("seed", "data", "validation")}
    reads_trained = 0
    for row in TABLE4_FOLD_ROWS:
        ours, theirs = effective_stages(seeded, row), effective_stages(base, row)
        if theirs["graph"]["mobilenet_v2"]["weights"] == "trained":
            assert ours["graph"]["mobilenet_v2"].pop("weights") == GRAPH_WEIGHTS
            theirs["graph"]["mobilenet_v2"].pop("weights")
            reads_trained += 1
        assert ours == theirs
    assert reads_trained == 3


def test_seed_layer_refuses_seed_zero():
    with pytest.raises(ValueError, match="seed 0"):
        _seed_module().seed_overlay(yaml.safe_load((FOLD / "config.yaml").read_text()), 0, GRAPH_WEIGHTS)


def test_seed_links_point_at_seed_zeros_stores(tmp_path):
    """flow, detect and warp (and their timings) of a seed resolve to seed 0's folders; a real folder in the way
    is not replaced."""
    module = _seed_module()
    for stage in ("flow", "detect", "warp"):
        (tmp_path / "davis16tr" / stage / "k").mkdir(parents=True)
        (tmp_path / "davis16tr" / "benchmarks" / stage).mkdir(parents=True)
    module.link_upstream(tmp_path, 3)
    module.link_upstream(tmp_path, 3)  # again: links already there are fine
    for stage in ("flow", "detect", "warp"):
        assert (tmp_path / "davis16s3" / stage / "k").is_dir()
        assert (tmp_path / "davis16s3" / stage).resolve() == (tmp_path / "davis16tr" / stage).resolve()
        assert ((tmp_path / "davis16s3" / "benchmarks" / stage).resolve()
                == (tmp_path / "davis16tr" / "benchmarks" / stage).resolve())
    (tmp_path / "davis16s5" / "flow").mkdir(parents=True)
    with pytest.raises(SystemExit, match="not a link"):
        module.link_upstream(tmp_path, 5)


def _fake_fold_root(root: Path) -> Path:
    (root / "ImageSets" / "480p").mkdir(parents=True)
    for split, video in (("foldtrain", "a"), ("foldcheck", "b"), ("train", "a")):
        (root / "ImageSets" / "480p" / f"{split}.txt").write_text(
            f"/JPEGImages/480p/{video}/00000.jpg /Annotations/480p/{video}/00000.png\n")
    return root


def test_own_graph_seed_layer_retrains_the_graph_features_on_its_seeds_proposals(tmp_path):
    """With the graph features retrained, the rows read features trained on this seed's foldtrain proposals (under
    davis16s<N>g), while the segmenter keeps the plain seed layer's key, so it is not trained again."""
    module, fold = _seed_module(), yaml.safe_load((FOLD / "config.yaml").read_text())
    base = _layered("config.yaml")
    plain = deep_merge(base, module.seed_overlay(fold, 2, GRAPH_WEIGHTS))
    own = deep_merge(base, module.seed_overlay(fold, 2, None))
    validate_config(own, "seed 2 layer, own graph features")
    root = str(_fake_fold_root(tmp_path / "fold"))
    for config in (plain, own):
        for dataset in ("davis16s2", "davis16s2g"):
            if dataset in config["datasets"]:
                config["datasets"][dataset]["root"] = root
    row = "fold-full-trained-l5-frag25-nms60-qsel"
    own_plan, plain_plan = plan_run(own, "davis16s2g", "foldcheck", row), plan_run(plain, "davis16s2", "foldcheck", row)
    assert own_plan.models["segmenter"].key == plain_plan.models["segmenter"].key
    assert set(own_plan.models) == {"segmenter", "graph"} and "graph" not in plain_plan.models
    assert [(e["dataset"], e["split"]) for e in own_plan.models["graph"].data] == [("davis16s2g", "foldtrain")]
    assert effective_stages(own, row) == effective_stages(base, row)  # the rows' own settings: weights "trained"


def test_own_graph_links_share_the_plain_seeds_online_stores(tmp_path):
    module = _seed_module()
    for stage in ("flow", "detect", "warp"):
        (tmp_path / "davis16tr" / stage).mkdir(parents=True)
        (tmp_path / "davis16tr" / "benchmarks" / stage).mkdir(parents=True)
    (tmp_path / "davis16s2" / "online" / "k").mkdir(parents=True)
    (tmp_path / "davis16s2" / "benchmarks" / "online").mkdir(parents=True)
    module.link_upstream(tmp_path, 2, own_graph=True)
    assert (tmp_path / "davis16s2g" / "online" / "k").is_dir()
    assert (tmp_path / "davis16s2g" / "flow").resolve() == (tmp_path / "davis16tr" / "flow").resolve()
    assert not (tmp_path / "davis16s2" / "flow").exists()  # the plain seed's folder is left alone
