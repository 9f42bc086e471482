#!/usr/bin/env bash
# Installs what the deployment test and scripts/local-chart.sh need, idempotently: Debian's podman with Debian's
# runc as its runtime, debootstrap (the base image is made from Debian packages: no registry is needed), moto's S3
# server (PyPI, in its own virtualenv .tools/s3: the S3 storage that keeps the test broker's records across a
# restart; see tests/deploy/broker.py for why not s3rver), and helm.
# podman runs as root (pods get slirp4netns networks with their ports on loopback: podman 4.3's kube play refuses host
# networking for pods that declare ports); this project's containers.conf (.tools/podman/containers.conf, given
# to podman through CONTAINERS_CONF by tests/deploy/play.py) picks runc, since crun fails on some machines' cgroups,
# and drops podman's default ulimits, which a container without CAP_SYS_RESOURCE may not be allowed to set.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

missing=()
for pkg in podman runc debootstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install_podman: ${missing[*]} missing and not root: run as root, or apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "install_podman: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
  }
fi

conf="$root/.tools/podman/containers.conf"
mkdir -p "$(dirname "$conf")"
want=$'[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"'
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
  printf '%s\n' "$want" > "$conf"
fi

s3="$root/.tools/s3"
if ! "$s3/bin/python" -c 'import moto, werkzeug' 2>/dev/null; then
  py=$(command -v python3)
  [ -x "$root/.venv/bin/python" ] && py=$(readlink -f "$root/.venv/bin/python")
  rm -rf "$s3"
  "$py" -m venv "$s3"
  "$s3/bin/python" -m pip install --quiet 'moto[server]==5.2.5' 2> >(grep -v "is ignored: it is neither" >&2)
fi

bash scripts/install_helm.sh >/dev/null

# podman must really run a container here (runc, the storage driver, cgroups): fail now, loudly, rather than in a test.
if ! CONTAINERS_CONF="$conf" podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null | grep -qx runc; then
  echo "install_podman: podman does not use runc with $conf:" >&2
  CONTAINERS_CONF="$conf" podman info >&2 || true
  exit 1
fi
