#!/usr/bin/env bash
# Try the chart without a cluster (README): `up` builds the image if absent (podman; the base image from Debian
# packages with debootstrap), starts a Kafka-protocol broker (Tansu on moto's S3 server, loopback only), renders the
# chart with helm and helm/linksyn/ci/podman-values.yaml, plays every workload with `podman kube play` (each pod in its
# own slirp4netns network, its ports published on loopback, a loopback proxy giving it the broker and the services),
# waits until every service is SERVING and prints the bootstrap address and the services' ports.
# `status` shows the pods' state and health; `down` removes every container, pod, volume and process `up` started.
# `build` only builds the image. Needs root (podman as root), apt-get and npm; sets up .venv on first use.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in
  up|build) bash scripts/setup.sh; bash scripts/install_podman.sh ;;
  down|status) ;;
  *) echo "usage: scripts/local-chart.sh up|down|status|build [--set-json KEY=JSON ...]" >&2; exit 2 ;;
esac
exec "$root/.venv/bin/python" -m tests.deploy.play "$@"
