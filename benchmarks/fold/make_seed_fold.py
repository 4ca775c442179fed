"""Another training of the check fold's segmenter, to measure how much one training moves Table 4's rows.

Usage (from the repository root, after the check fold's rows ran once with seed 0):
    python benchmarks/fold/make_seed_fold.py --seed 1
    snakemake --cores 2 --configfile benchmarks/fold/config.yaml cache/seed_fold/seed1.yaml -- \\
        results/davis16s1_foldcheck__<variant>

It writes `cache/seed_fold/seed<N>.yaml`, a config layer that retrains the segmenter on foldtrain with seed N (the
same recipe otherwise) and runs foldcheck under the dataset name `davis16s<N>`, so that its results sit beside seed
0's instead of overwriting them (README "Table 4 over five trainings"). Flow, detect and warp do not depend on the
segmenter, so their keys are seed 0's: the script links `cache/davis16s<N>/{flow,detect,warp}` (and their benchmark
folders) to `cache/davis16tr/...` instead of recomputing them (1533 s of jobs on 2 cores). The graph rows read seed
0's graph features by path: retraining them would first segment foldtrain again (2363 s of jobs) and then train them
(about 16 minutes), about 35 minutes more per seed; `--own-graph-features` does that (results under
`davis16s<N>g`, beside the plain seed's; the segmenter and its online-learning stores are the plain seed's).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1].parent
FOLD = REPO / "benchmarks" / "fold"
BASE_DATASET = "davis16tr"
TRAINED_GRAPH_ROWS = ("fold-spatial-trained-l5-frag25-nms60", "fold-full-trained-l5-frag25-nms60-qsel",
                      "fold-full-trained-ol-l5-frag25-nms60-qsel")
UPSTREAM_STAGES = ("flow", "detect", "warp")


def seed_dataset(seed: int, own_graph: bool = False) -> str:
    """The dataset name a seed's results run under (`g`: the graph features retrained too)."""
    return f"davis16s{seed}" + ("g" if own_graph else "")


def seed_overlay(fold_config: dict[str, Any], seed: int, graph_weights: str | None) -> dict[str, Any]:
    """The config layer for training `seed`: the fold's dataset under another name, the segmenter's seed and data,
    and seed 0's graph features (`graph_weights`, a path) in the rows that read trained ones.

    `graph_weights` None: the graph features are retrained too, on foldtrain's proposals of this seed's segmenter;
    the results run under `davis16s<N>g`, so the rows with seed 0's features keep theirs, and the segmenter is the
    one the plain seed layer trains (its data stay `davis16s<N>`, so its key does not change)."""
    if seed < 1:
        raise ValueError(f"seed 0 is the check fold itself (benchmarks/fold/config.yaml); got --seed {seed}")
    segmenter_dataset, dataset = seed_dataset(seed), seed_dataset(seed, graph_weights is None)
    overlay = {
        "datasets": {name: copy.deepcopy(fold_config["datasets"][BASE_DATASET])
                     for name in dict.fromkeys((segmenter_dataset, dataset))},
        "training": {"segmenter": {"data": [{"dataset": segmenter_dataset, "split": "foldtrain"}],
                                   "validation": [{"dataset": segmenter_dataset, "split": "foldcheck"}],
                                   "seed": seed}},
    }
    if graph_weights is None:
        overlay["training"]["graph"] = {"data": [{"dataset": dataset, "split": "foldtrain"}]}
    else:
        overlay["variants"] = {row: {"stages": {"graph": {"mobilenet_v2": {"weights": graph_weights}}}}
                               for row in TRAINED_GRAPH_ROWS}
    return overlay


def link_upstream(cache: Path, seed: int, own_graph: bool = False) -> None:
    """Point the seed's flow, detect and warp folders (and their benchmark timings) at seed 0's; with `own_graph`
    also its online-learning folders at the plain seed's (the same segmenter, so the same keys)."""
    dataset = cache / seed_dataset(seed, own_graph)
    (dataset / "benchmarks").mkdir(parents=True, exist_ok=True)
    sources = {stage: BASE_DATASET for stage in UPSTREAM_STAGES}
    if own_graph:
        sources["online"] = seed_dataset(seed)
    for stage, source in sources.items():
        for link, target in ((dataset / stage, Path("..") / source / stage),
                             (dataset / "benchmarks" / stage, Path("..") / ".." / source / "benchmarks" / stage)):
            if link.is_symlink() or not link.exists():
                link.unlink(missing_ok=True)
                link.symlink_to(target)
            elif link.resolve() != (link.parent / target).resolve():
                raise SystemExit(f"{link} exists and is not a link to {target}: move it away first")


def graph_features_path(config: dict[str, Any]) -> str:
    """Where seed 0's trained graph features live (the key the check fold's spatial row plans)."""
    from stg.config import plan_run

    plan = plan_run(config, BASE_DATASET, "foldcheck", TRAINED_GRAPH_ROWS[0])
    return f"cache/models/graph/{plan.models['graph'].key}/model.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True, help="the segmenter's training seed (>= 1)")
    parser.add_argument("--own-graph-features", action="store_true",
                        help="retrain the graph features on its foldtrain proposals too (results: davis16s<N>g)")
    parser.add_argument("--out", type=Path, default=REPO / "cache" / "seed_fold", help="folder of the config layers")
    args = parser.parse_args()
    own = args.own_graph_features

    from stg.config import DEFAULT_CONFIG_PATH, deep_merge, validate_config

    fold_config = yaml.safe_load((FOLD / "config.yaml").read_text())
    config = deep_merge(yaml.safe_load(Path(DEFAULT_CONFIG_PATH).read_text()), fold_config)
    overlay = seed_overlay(fold_config, args.seed, None if own else graph_features_path(config))
    validate_config(deep_merge(config, overlay), f"seed {args.seed} layer")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"seed{args.seed}{'g' if own else ''}.yaml"
    flag = " --own-graph-features" if own else ""
    path.write_text(f"# written by benchmarks/fold/make_seed_fold.py --seed {args.seed}{flag}\n"
                    + yaml.safe_dump(overlay, sort_keys=False))
    link_upstream(REPO / "cache", args.seed, own)
    online = f", online to {seed_dataset(args.seed)}'s" if own else ""
    print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}; linked flow, detect and warp of "
          f"{seed_dataset(args.seed, own)} to {BASE_DATASET}'s{online}. Run:\n"
          f"  snakemake --cores 2 --configfile benchmarks/fold/config.yaml {path} -- "
          f"results/{seed_dataset(args.seed, own)}_foldcheck__<variant>")


if __name__ == "__main__":
    main()
