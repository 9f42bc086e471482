#!/usr/bin/env bash
# Sets up .venv and runs the embedded pipeline (every stage in one process, in-memory bus, CPU, offline) on the
# example seeds in examples/seeds.jsonl. `linksyn run` prints what each stage did and where the report is:
# out/demo/report.html (open it in a browser; its figures are in out/demo/report.json), the dataset in out/demo/dataset.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh
out="$root/out/demo"
exec "$root/.venv/bin/linksyn" run --seeds examples/seeds.jsonl --config examples/demo.yaml --out "$out" --overwrite "$@"
