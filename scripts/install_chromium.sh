#!/usr/bin/env bash
# Installs Debian's chromium and a CJK font (fonts-noto-cjk) for the browser test of the HTML report
# (tests/report/test_browser.py: headless Chromium over the DevTools protocol). Idempotent: nothing to do when
# both are there. Needs root (or sudo): chromium's libraries come with it from apt.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then exit 0; fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "install_chromium: apt-get install chromium fonts-noto-cjk needs root or sudo" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
packages=(chromium fonts-noto-cjk)
if ! $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null 2>&1; then
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
chromium --version
