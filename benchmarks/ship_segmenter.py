"""Make a train_segmenter output the package's shipped default segmenter (a maintainer's step).

Usage (from the repository root):
    python benchmarks/ship_segmenter.py cache/models/segmenter/<key>

Copies model.pt, training.json and curve.png to stg/shipped_weights/segmenter_davis16{.pt,.training.json,
.curve.png} and writes the checkpoint's sha256 into the registry entry `segmenter_davis16`
(stg/weights_registry.py), so the shipped file and the registry can never disagree. Prints what it did.
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

ENTRY = "segmenter_davis16"


def main() -> None:
    from stg.weights_registry import SHIPPED_DIR, file_sha256, known_weights

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="a cache/models/segmenter/<key> folder")
    args = parser.parse_args()
    sources = {name: args.model_dir / name for name in ("model.pt", "training.json", "curve.png")}
    missing = [str(path) for path in sources.values() if not path.is_file()]
    if missing:
        sys.exit(f"{args.model_dir}: not a finished train_segmenter output (missing {', '.join(missing)})")
    record = json.loads(sources["training.json"].read_text())
    entry = known_weights(ENTRY)
    stem = Path(entry.file).stem
    targets = {"model.pt": SHIPPED_DIR / entry.file, "training.json": SHIPPED_DIR / f"{stem}.training.json",
               "curve.png": SHIPPED_DIR / f"{stem}.curve.png"}
    for name, target in targets.items():
        shutil.copyfile(sources[name], target)
    digest = file_sha256(targets["model.pt"])
    registry = REPO / "stg" / "weights_registry.py"
    text = registry.read_text()
    pattern = re.compile(rf'(id="{ENTRY}",\s*file="[^"]+",\s*sha256=")([0-9a-f]{{64}})(")')
    if not pattern.search(text):
        sys.exit(f"{registry}: entry '{ENTRY}' not found in the expected form")
    registry.write_text(pattern.sub(rf"\g<1>{digest}\g<3>", text, count=1))
    size = targets["model.pt"].stat().st_size / 2**20
    print(f"shipped {args.model_dir} (key {record.get('key')}, encoder {record['settings']['encoder']}, "
          f"{record['steps']} steps, data {[d['split'] for d in record['data']]}) as {targets['model.pt']} "
          f"({size:.1f} MiB), sha256 {digest}")


if __name__ == "__main__":
    main()
