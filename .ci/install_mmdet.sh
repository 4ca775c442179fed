#!/usr/bin/env bash
# Install the optional [mmdet] extra (mmdet 3.3 + mmengine + mmcv 2.1.0 with CPU ops).
# mmcv 2.1.0 has no wheel for current torch on PyPI, so it is compiled from the sdist once
# (~15-20 min on 2 cores) into a wheel cache, one folder per torch version (the compiled ops are
# tied to torch's ABI), and installed from there on later runs.
# Usage: bash .ci/install_mmdet.sh [PYTHON]   (default: python on PATH)
set -euo pipefail
PY=${1:-python}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if "$PY" -c "import mmcv, mmdet, mmengine; from mmcv.ops import nms" 2>/dev/null; then
    echo "install_mmdet: mmcv/mmdet/mmengine already installed"
    exit 0
fi

# mmcv's setup.py needs pkg_resources (removed from newer setuptools) and the installed torch
# (hence no build isolation).
"$PY" -m pip install --quiet "setuptools<81" wheel
TORCH=$("$PY" -c "import torch; print(torch.__version__.replace('+', '_'))")
CACHE=${STG_WHEEL_CACHE:-$HOME/.cache/stg-wheels}/torch-$TORCH
mkdir -p "$CACHE"
if ! ls "$CACHE"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    echo "install_mmdet: building mmcv 2.1.0 wheel into $CACHE (takes 10+ minutes)"
    SRC=$(mktemp -d)
    trap 'rm -rf "$SRC"' EXIT
    "$PY" -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation mmcv==2.1.0 -d "$SRC"
    tar -xzf "$SRC"/mmcv-2.1.0.tar.gz -C "$SRC"
    # torch >= 2.10 headers require C++20; mmcv 2.1.0 hard-codes -std=c++17 for its CPU ops.
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC"/mmcv-2.1.0/setup.py
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "$PY" -m pip wheel --no-deps --no-build-isolation "$SRC"/mmcv-2.1.0 -w "$CACHE"
fi
"$PY" -m pip install --quiet --no-deps "$CACHE"/mmcv-2.1.0-*.whl
# mmcv's own runtime dependencies (no-deps above keeps pip from rebuilding it).
"$PY" -m pip install --quiet addict packaging Pillow pyyaml yapf "opencv-python-headless>=4.8"
"$PY" -m pip install --quiet -e "$ROOT[mmdet]"
# mmengine depends on opencv-python (GUI build), whose cv2 files overwrite the headless build the
# project uses; put the headless files back (same version, so both distributions stay satisfied).
HEADLESS=$("$PY" -c "from importlib.metadata import version; print(version('opencv-python-headless'))")
"$PY" -m pip install --quiet --force-reinstall --no-deps "opencv-python-headless==$HEADLESS"
"$PY" -c "import mmcv, mmdet, mmengine; from mmcv.ops import nms; print('install_mmdet: mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmengine', mmengine.__version__)"
