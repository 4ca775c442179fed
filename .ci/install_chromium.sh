#!/usr/bin/env bash
# Install Debian's headless-capable Chromium and its matching chromedriver for tests/test_report.py,
# which opens results/<run>/report.html in a real browser through Selenium. Debian's packages are
# used (not Selenium Manager's downloads) so the browser and driver versions always match and
# nothing is fetched while the tests run. Idempotent. Must run as root.
# Usage: bash .ci/install_chromium.sh
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    echo "install_chromium: $(chromium --version 2>/dev/null); $(chromedriver --version 2>/dev/null | head -n 1)"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install_chromium: must run as root (apt-get install chromium chromium-driver)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
echo "install_chromium: $(chromium --version 2>/dev/null); $(chromedriver --version 2>/dev/null | head -n 1)"
