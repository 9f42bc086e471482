#!/usr/bin/env bash
# Sets up .venv and runs the embedded pipeline (every stage in one process, in-memory bus, CPU, offline) on the
# example seeds in examples/seeds.jsonl. The report goes to out/demo/report.json.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh
out="$root/out/demo"
rc=0
"$root/.venv/bin/linksyn" run --seeds examples/seeds.jsonl --config examples/demo.yaml --out "$out" --overwrite "$@" || rc=$?
if [ -f "$out/report.json" ]; then
  echo
  echo "report: $out/report.json"
  if [ -d "$out/dataset" ]; then
    echo "dataset: $out/dataset"
  fi
fi
exit "$rc"
