"""Make a trained model the package's shipped default (a maintainer's step).

Usage (from the repository root):
    python benchmarks/ship_model.py segmenter cache/models/segmenter/<key>
    python benchmarks/ship_model.py graph cache/models/graph/<key>

Copies model.pt, training.json and curve.png to stg/shipped_weights/<entry>{.pt,.training.json,.curve.png}
(segmenter: `segmenter_davis16`, graph: `graph_davis16`) and writes the checkpoint's sha256 into that registry
entry (stg/weights_registry.py), so the shipped file and the registry can never disagree. Prints what it did.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ENTRIES = {"segmenter": "segmenter_davis16", "graph": "graph_davis16"}


def main() -> None:
    from stg.weights_registry import SHIPPED_DIR, file_sha256, known_weights

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted(ENTRIES), help="which shipped model to replace")
    parser.add_argument("model_dir", type=Path, help="a cache/models/<model>/<key> folder")
    args = parser.parse_args()
    entry_id = ENTRIES[args.model]
    sources = {name: args.model_dir / name for name in ("model.pt", "training.json", "curve.png")}
    missing = [str(path) for path in sources.values() if not path.is_file()]
    if missing:
        sys.exit(f"{args.model_dir}: not a finished train_{args.model} output (missing {', '.join(missing)})")
    record = json.loads(sources["training.json"].read_text())
    entry = known_weights(entry_id)
    stem = Path(entry.file).stem
    targets = {"model.pt": SHIPPED_DIR / entry.file, "training.json": SHIPPED_DIR / f"{stem}.training.json",
               "curve.png": SHIPPED_DIR / f"{stem}.curve.png"}
    for name, target in targets.items():
        shutil.copyfile(sources[name], target)
    digest = file_sha256(targets["model.pt"])
    registry = REPO / "stg" / "weights_registry.py"
    text = registry.read_text()
    pattern = re.compile(rf'(id="{entry_id}",\s*file="[^"]+",\s*sha256=")([0-9a-f]{{64}})(")')
    if not pattern.search(text):
        sys.exit(f"{registry}: entry '{entry_id}' not found in the expected form")
    registry.write_text(pattern.sub(rf"\g<1>{digest}\g<3>", text, count=1))
    size = targets["model.pt"].stat().st_size / 2**20
    print(f"shipped {args.model_dir} (key {record.get('key')}, {record['steps']} steps, data "
          f"{[d['split'] for d in record['data']]}) as {targets['model.pt']} ({size:.1f} MiB), sha256 {digest}")


if __name__ == "__main__":
    main()
