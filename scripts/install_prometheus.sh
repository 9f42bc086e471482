#!/usr/bin/env bash
# Installs Debian's prometheus binary into .tools/bin (downloaded with apt-get and unpacked with dpkg -x: nothing
# is installed system-wide and no service is started). Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.tools/bin"
if [ -x "$dest/prometheus" ] && "$dest/prometheus" --version >/dev/null 2>&1; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download prometheus >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get download prometheus >/dev/null
fi
dpkg -x prometheus_*.deb "$tmp/x"
mkdir -p "$dest"
install -m 0755 "$tmp/x/usr/bin/prometheus" "$dest/prometheus"
install -m 0755 "$tmp/x/usr/bin/promtool" "$dest/promtool"
"$dest/prometheus" --version | head -1
