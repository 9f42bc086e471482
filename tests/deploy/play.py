"""The chart without a cluster: build the image with podman, start a durable broker, render the chart with helm and
play every workload with `podman kube play`. `scripts/local-chart.sh up|down|status` is this module's command line;
tests/deploy/test_deploy.py drives the same code.

Networking: each pod has its own network namespace (slirp4netns; podman 4.3 publishes container ports only from
such pods), its container ports published on the machine by podman (rootlessport, which carries host
127.0.0.1:PORT to the pod's 127.0.0.1:PORT), and tests/deploy/netproxy.py makes the machine's 127.0.0.1:PORT of the
broker and of the other services' gRPC ports reachable inside it. Every connection is a loopback connection.

What the play changes in the rendered chart, and nothing else: a StatefulSet becomes a Deployment with the same pod
template (podman 4.3 plays no StatefulSets), its volumeClaimTemplates becoming PersistentVolumeClaims named as
Kubernetes names them (`data-linksyn-graph-0`); only the kinds podman plays (ConfigMap, Secret,
PersistentVolumeClaim, Deployment) go to podman. Services, ServiceMonitors, PodDisruptionBudgets, NetworkPolicies
and the rest are rendered (and checked by tests/helm) but have nothing to run here.

Images are cached in podman's storage under tags made from a hash of what they are built from (the base image:
the debootstrap recipe; the linksyn image: Dockerfile, .dockerignore, pyproject.toml, README.md, services/ and the
build arguments), so a second run on the same machine builds nothing, and a change of the sources rebuilds only
the image's last layer (pip's downloads stay in a build cache mount).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from tests.deploy.broker import DurableBroker
from tests.tooling.ports import free_loopback_port

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "linksyn"
PODMAN_VALUES = CHART / "ci" / "podman-values.yaml"
HELM = ROOT / ".tools" / "bin" / "helm"
CONTAINERS_CONF = ROOT / ".tools" / "podman" / "containers.conf"
STATE_DIR = ROOT / ".local-chart"
RELEASE = "linksyn"
SERVICES = ("extractor", "graph", "sampler", "synth", "sink")
IMAGE_REPO = "localhost/linksyn"
BASE_REPO = "localhost/linksyn-base"
DEBOOTSTRAP = {"suite": "bookworm", "variant": "minbase", "include": "python3,python3-venv,ca-certificates"}
"""The base image's recipe (its tag is a hash of this): Debian with Python 3.11 and its venv module."""
TORCH_WHEEL = re.compile(r"^torch-2\.13\.0\+cpu-cp311-cp311-.*linux.*x86_64\.whl$")
PLAYED_KINDS = ("ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment")


def log(msg: str) -> None:
    print(f"local-chart: {msg}", file=sys.stderr, flush=True)


class PlayError(RuntimeError):
    """A step of building or playing failed; the message carries the command's output."""


# ---- podman ----------------------------------------------------------------------------------------------------


def podman_env() -> dict[str, str]:
    """podman with this project's containers.conf (runc as the runtime, no default ulimits); see
    scripts/install_podman.sh."""
    if not CONTAINERS_CONF.exists():
        raise PlayError(f"{CONTAINERS_CONF} is missing: run `bash scripts/install_podman.sh`")
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, timeout: float = 600, capture: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], env=podman_env(), text=True, timeout=timeout,
                          capture_output=capture, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise PlayError(f"podman {' '.join(args)} exited {proc.returncode}:\n{(proc.stderr or '')[-4000:]}")
    return proc


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


# ---- images ----------------------------------------------------------------------------------------------------


def debian_mirror() -> str:
    """The machine's Debian mirror (apt's sources), else deb.debian.org."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for block in sources.read_text().split("\n\n"):
            if re.search(r"^Suites:.*\bbookworm\b(?!-)", block, re.M) or "Suites: bookworm " in block:
                m = re.search(r"^URIs:\s*(\S+)", block, re.M)
                if m and "security" not in m.group(1):
                    return m.group(1)
    plain = Path("/etc/apt/sources.list")
    if plain.exists():
        for line in plain.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    return "http://deb.debian.org/debian"


def base_image_name() -> str:
    return f"{BASE_REPO}:{DEBOOTSTRAP['suite']}-" + hashlib.sha256(
        json.dumps(DEBOOTSTRAP, sort_keys=True).encode()).hexdigest()[:12]


def ensure_base_image() -> tuple[str, float]:
    """The base image (made here with debootstrap and `podman import` when absent): (name, seconds spent)."""
    name = os.environ.get("LINKSYN_BASE_IMAGE") or base_image_name()
    if image_exists(name):
        return name, 0.0
    if os.environ.get("LINKSYN_BASE_IMAGE"):
        raise PlayError(f"LINKSYN_BASE_IMAGE={name} is not in podman's storage (`podman pull` or build it first)")
    t0 = time.monotonic()
    mirror = debian_mirror()
    log(f"making the base image {name} with debootstrap from {mirror} (about a minute or two)")
    with tempfile.TemporaryDirectory(prefix="linksyn-base-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        proc = subprocess.run(
            ["debootstrap", f"--variant={DEBOOTSTRAP['variant']}", f"--include={DEBOOTSTRAP['include']}",
             DEBOOTSTRAP["suite"], str(rootfs), mirror], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise PlayError(f"debootstrap failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                     "usr/share/info"):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
            (rootfs / junk).mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            ["podman", "import", "--change", "ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "--change", 'CMD=["/bin/bash"]', "-", name],
            stdin=tar.stdout, capture_output=True, text=True, env=podman_env(), timeout=600)
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise PlayError(f"podman import failed:\n{imp.stderr[-3000:]}")
    return name, time.monotonic() - t0


def image_inputs() -> list[Path]:
    """The files the image is built from (what the Dockerfile copies, minus .dockerignore's patterns)."""
    files = [ROOT / "Dockerfile", ROOT / ".dockerignore", ROOT / "pyproject.toml", ROOT / "README.md"]
    for p in sorted((ROOT / "services").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
            files.append(p)
    return files


def local_torch_wheels() -> Path | None:
    """A folder holding the CPU torch 2.13.0 wheel ($LINKSYN_WHEELS, else /opt/wheels), if there is one."""
    for d in (os.environ.get("LINKSYN_WHEELS"), "/opt/wheels"):
        if d and Path(d).is_dir() and any(TORCH_WHEEL.match(p.name) for p in Path(d).iterdir()):
            return Path(d)
    return None


def build_settings(base: str) -> tuple[list[str], dict[str, str]]:
    """(podman build arguments: volumes and build args, the build args alone) for this machine: the local base
    image, a local torch wheel when there is one, the machine's CA bundle for pip, a package index mirror from
    $LINKSYN_PIP_INDEX_URL. On a machine without these the Dockerfile's defaults apply."""
    args: dict[str, str] = {"BASE_IMAGE": base}
    vols: list[str] = []
    index = os.environ.get("LINKSYN_PIP_INDEX_URL")
    if index:
        args["PIP_INDEX_URL"] = index
    wheels = local_torch_wheels()
    if wheels is not None:
        vols += ["-v", f"{wheels}:/wheels:ro"]
        args["PIP_FIND_LINKS"] = "/wheels"
        args["TORCH_INDEX_URL"] = index or "https://pypi.org/simple"
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.exists():
        vols += ["-v", f"{bundle}:/etc/ssl/certs/build-host-ca.crt:ro"]
        args["PIP_CERT"] = "/etc/ssl/certs/build-host-ca.crt"
    flags = list(vols)
    for k, v in args.items():
        flags += ["--build-arg", f"{k}={v}"]
    return flags, args


def source_hash(build_args: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for p in image_inputs():
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() + b"\0")
    h.update(json.dumps(dict(build_args), sort_keys=True).encode())
    return h.hexdigest()[:16]


@dataclass
class ImageInfo:
    name: str
    built: bool
    build_s: float
    base_s: float
    size_bytes: int


def ensure_image(build_log: Path | None = None) -> ImageInfo:
    """The linksyn image for the current sources, built when podman's storage lacks it. Keeps the three newest
    images of this repository (older ones are removed, with the layers only they use)."""
    base, base_s = ensure_base_image()
    flags, args = build_settings(base)
    name = f"{IMAGE_REPO}:src-{source_hash(args)}"
    built, build_s = False, 0.0
    if not image_exists(name):
        log(f"building {name} (a cold build takes minutes; later builds reuse podman's layers)")
        t0 = time.monotonic()
        out = build_log or (STATE_DIR / "build.log")
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w") as f:
            proc = subprocess.run(["podman", "build", "--network", "host", *flags, "-t", name, "-f",
                                   str(ROOT / "Dockerfile"), str(ROOT)],
                                  stdout=f, stderr=subprocess.STDOUT, env=podman_env(), timeout=3600,
                                  stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise PlayError(f"podman build failed (exit {proc.returncode}); the end of {out}:\n"
                            f"{out.read_text(errors='replace')[-5000:]}")
        built, build_s = True, time.monotonic() - t0
        _prune_old_images(keep=3)
    size = int(json.loads(podman("image", "inspect", name).stdout)[0]["Size"])
    return ImageInfo(name, built, round(build_s, 1), round(base_s, 1), size)


def _prune_old_images(keep: int) -> None:
    rows = json.loads(podman("images", "--format", "json", IMAGE_REPO).stdout or "[]")
    tagged = sorted(((r.get("Created", 0), n) for r in rows for n in (r.get("Names") or [])
                     if n.startswith(f"{IMAGE_REPO}:src-")), reverse=True)
    for _, n in tagged[keep:]:
        podman("rmi", n, check=False)  # one still in use by a container stays
    # No `podman image prune`: the build stage's layers (torch, the requirements) are untagged, and they are what
    # makes the next build after a change of the sources take seconds instead of minutes.


# ---- the chart -------------------------------------------------------------------------------------------------


@dataclass
class Ports:
    grpc: int
    metrics: int


def render(sets: Mapping[str, Any], values: Iterable[Path] = (PODMAN_VALUES,)) -> list[dict]:
    """`helm template` of the chart with the given values files and --set-json values."""
    if not HELM.exists():
        raise PlayError(f"helm is missing at {HELM}: run `bash scripts/install_helm.sh`")
    cmd = [str(HELM), "template", RELEASE, str(CHART)]
    for v in values:
        cmd += ["-f", str(v)]
    for k, v in sets.items():
        cmd += ["--set-json", f"{k}={json.dumps(v)}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise PlayError(f"helm template failed:\n{proc.stderr}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def play_documents(docs: list[dict]) -> dict[str, list[dict]]:
    """Service -> the documents podman plays for it: the ConfigMaps and Secrets, its PersistentVolumeClaims, its
    workload (a StatefulSet as a Deployment with the same pod template)."""
    shared = [d for d in docs if d["kind"] in ("ConfigMap", "Secret")]
    out: dict[str, list[dict]] = {}
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        component = d["metadata"]["labels"]["app.kubernetes.io/component"]
        extra: list[dict] = []
        if d["kind"] == "StatefulSet":
            d = statefulset_as_deployment(d, extra)
        out[component] = [copy.deepcopy(s) for s in shared] + extra + [d]
    return out


def statefulset_as_deployment(sts: dict, pvcs_out: list[dict]) -> dict:
    """The StatefulSet's pod template in a Deployment; each volumeClaimTemplate becomes a PVC named
    `<template>-<statefulset>-0` (what Kubernetes names replica 0's claim) mounted under the template's name."""
    spec = sts["spec"]
    template = copy.deepcopy(spec["template"])
    for vct in spec.get("volumeClaimTemplates", []):
        claim = f"{vct['metadata']['name']}-{sts['metadata']['name']}-0"
        pvcs_out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "metadata": {"name": claim}, "spec": copy.deepcopy(vct["spec"])})
        template["spec"].setdefault("volumes", []).append(
            {"name": vct["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}})
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": copy.deepcopy(sts["metadata"]),
            "spec": {"replicas": spec.get("replicas", 1), "selector": copy.deepcopy(spec["selector"]),
                     "template": template}}


def container_of(docs: list[dict], service: str) -> dict:
    """The rendered container spec of a service's workload."""
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet") and \
                d["metadata"]["labels"].get("app.kubernetes.io/component") == service:
            return d["spec"]["template"]["spec"]["containers"][0]
    raise KeyError(service)


def workload_name(service: str) -> str:
    return f"{RELEASE}-{service}"


def pod_name(service: str) -> str:
    """podman kube play names a Deployment's (first) pod `<deployment>-pod-0`."""
    return f"{workload_name(service)}-pod-0"


def container_name(service: str) -> str:
    """...and its container `<pod>-<container>`."""
    return f"{pod_name(service)}-{service}"


# ---- a played release ------------------------------------------------------------------------------------------


@dataclass
class LocalChart:
    """Broker + image + rendered chart + played pods, with what is needed to stop them all (saved in `state_dir`).

    `sets`: extra values (`--set-json`), e.g. {"config.sampler.max_paths": 8}."""

    state_dir: Path = STATE_DIR
    sets: dict[str, Any] = field(default_factory=dict)
    broker: DurableBroker | None = None
    netproxy_pid: int | None = None
    image: ImageInfo | None = None
    ports: dict[str, Ports] = field(default_factory=dict)
    docs: list[dict] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    # -- up

    def up(self, wait: bool = True, timeout: float = 600) -> "LocalChart":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.state_file.exists():
            raise PlayError(f"{self.state_file} exists: a release is up already (`scripts/local-chart.sh down`)")
        t0 = time.monotonic()
        self.image = ensure_image(self.state_dir / "build.log")
        self.timings["image"] = round(time.monotonic() - t0, 1)
        try:
            self.broker = DurableBroker(self.state_dir / "broker")
            self._save()
            self.broker.start()
            self._save()
            self._start_netproxy()
            self.ports = {s: Ports(free_loopback_port(), free_loopback_port()) for s in SERVICES}
            self.docs = render(self.values())
            self._save()
            t1 = time.monotonic()
            for service, docs in play_documents(self.docs).items():
                self._play(service, docs)
            if wait:
                self.wait_serving(timeout=timeout)
            self.timings["play"] = round(time.monotonic() - t1, 1)
            self._save()
        except BaseException:
            self.down()
            raise
        return self

    def values(self) -> dict[str, Any]:
        assert self.image is not None and self.broker is not None
        repo, tag = self.image.name.rsplit(":", 1)
        sets: dict[str, Any] = {
            "image.repository": repo, "image.tag": tag,
            "kafka.bootstrap": self.broker.bootstrap,
            "config.sampler.graph_target": f"127.0.0.1:{self.ports['graph'].grpc}",
        }
        for s, p in self.ports.items():
            sets[f"services.{s}.ports"] = {"grpc": p.grpc, "metrics": p.metrics}
        return sets | self.sets

    def _play(self, service: str, docs: list[dict], replace: bool = False) -> None:
        """Create the pod (not started), start its infra container (the network namespace), have the netproxy
        listen in that namespace, then start the pod."""
        path = self.state_dir / f"play-{service}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        for d in docs:
            if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] not in self.volumes:
                self.volumes.append(d["metadata"]["name"])
        self._save()
        args = ["kube", "play", "--network", "slirp4netns", "--start=false", "--log-driver", "k8s-file"]
        if replace:
            args.append("--replace")
        podman(*args, str(path), timeout=300)
        infra = podman("pod", "inspect", pod_name(service), "--format", "{{.InfraContainerID}}").stdout.strip()
        podman("start", infra)
        netns = podman("inspect", infra, "--format", "{{.NetworkSettings.SandboxKey}}").stdout.strip()
        self._proxy_into(service, netns)
        podman("pod", "start", pod_name(service), timeout=300)

    def _proxy_ports(self, service: str) -> list[int]:
        """What a pod reaches on the machine's loopback: the broker and the other services' gRPC ports."""
        assert self.broker is not None
        return [self.broker.port] + [p.grpc for s, p in self.ports.items() if s != service]

    def _netproxy_files(self) -> tuple[Path, Path]:
        return self.state_dir / "netproxy-want.json", self.state_dir / "netproxy-have.json"

    def _start_netproxy(self) -> None:
        want, have = self._netproxy_files()
        want.write_text("{}")
        have.unlink(missing_ok=True)
        with open(self.state_dir / "netproxy.log", "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "tests.deploy.netproxy", str(self.state_dir)],
                                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.netproxy_pid = proc.pid
        self._save()

    def _proxy_into(self, service: str, netns: str, timeout: float = 30) -> None:
        want_file, have_file = self._netproxy_files()
        want = json.loads(want_file.read_text())
        want = {ns: ports for ns, ports in want.items() if Path(ns).exists()}  # pods that were replaced
        want[netns] = self._proxy_ports(service)
        tmp = want_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(want))
        tmp.replace(want_file)
        deadline = time.monotonic() + timeout
        while True:
            have = json.loads(have_file.read_text()) if have_file.exists() else {}
            if netns in have.get("attached", []):
                return
            if netns in have.get("errors", {}) or time.monotonic() > deadline:
                raise PlayError(f"the netproxy did not listen in {service}'s network namespace {netns}: "
                                f"{have.get('errors', {}).get(netns, 'timed out')}\n"
                                f"{(self.state_dir / 'netproxy.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def grace_period(self, service: str) -> int:
        for d in self.docs:
            if d["kind"] in ("Deployment", "StatefulSet") and \
                    d["metadata"]["labels"].get("app.kubernetes.io/component") == service:
                return int(d["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30))
        raise KeyError(service)

    def replay(self, service: str) -> None:
        """A rolling restart (`kubectl rollout restart` of one replica): the pod is stopped as the kubelet stops it
        (SIGTERM, then SIGKILL after the pod's terminationGracePeriodSeconds, which podman 4.3's kube play does not
        take over), and replaced by a new pod from the same manifests (`podman kube play --replace`)."""
        grace = self.grace_period(service)
        podman("pod", "stop", "--time", str(grace), pod_name(service), timeout=grace + 120)
        docs = play_documents(self.docs)[service]
        # the volumes exist: their claims are not played again (podman would refuse an existing volume)
        self._play(service, [d for d in docs if d["kind"] != "PersistentVolumeClaim"], replace=True)

    def stop_container(self, service: str, timeout_s: int = 30) -> None:
        podman("stop", "--time", str(timeout_s), container_name(service), timeout=timeout_s + 60)

    def start_container(self, service: str) -> None:
        podman("start", container_name(service))

    # -- observation

    def target(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service].grpc}"

    def container_state(self, service: str) -> dict:
        proc = podman("inspect", "--type", "container", container_name(service), check=False)
        if proc.returncode != 0:
            return {}
        return json.loads(proc.stdout)[0]["State"]

    def logs(self, service: str, tail: int = 60) -> str:
        proc = podman("logs", "--tail", str(tail), container_name(service), check=False)
        return (proc.stdout or "") + (proc.stderr or "")

    def all_logs(self, tail: int = 40) -> str:
        return "\n".join(f"---- {s} ----\n{self.logs(s, tail)}" for s in SERVICES)

    def volume_path(self, claim: str) -> Path:
        return Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", claim).stdout.strip())

    def health(self, service: str, timeout: float = 3.0) -> str:
        """grpc.health.v1 Check of the server as a whole (service ""), as Kubernetes' gRPC probe asks it."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(self.target(service)) as ch:
            try:
                resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""),
                                                           timeout=timeout)
            except grpc.RpcError as e:
                return f"ERROR {e.code().name}"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def wait_serving(self, services: Iterable[str] = SERVICES, timeout: float = 600) -> None:
        pending = list(services)
        deadline = time.monotonic() + timeout
        while pending:
            for s in list(pending):
                state = self.container_state(s)
                if state and state.get("Status") not in ("running", "created", "configured", "initialized"):
                    raise PlayError(f"{s}'s container is {state.get('Status')} (exit {state.get('ExitCode')}):\n"
                                    f"{self.logs(s)}")
                if self.health(s) == "SERVING":
                    pending.remove(s)
            if pending and time.monotonic() > deadline:
                raise PlayError(f"not SERVING after {timeout:g} s: {pending}\n{self.all_logs()}")
            time.sleep(0.5)

    # -- down

    def down(self) -> None:
        """Remove every pod, container and volume this release made, and stop the broker. Never raises; what it
        could not remove is reported."""
        problems: list[str] = []
        for s in SERVICES:
            path = self.state_dir / f"play-{s}.yaml"
            if path.exists():
                proc = podman("kube", "down", str(path), check=False, timeout=300)
                if proc.returncode != 0 and "no such pod" not in (proc.stderr or "").lower():
                    problems.append(f"kube down {s}: {proc.stderr.strip()[-300:]}")
            # whatever kube down left (a pod it could not name)
            if podman("pod", "exists", pod_name(s), check=False).returncode == 0:
                podman("pod", "rm", "--force", pod_name(s), check=False, timeout=300)
        # the claims, and the volumes podman 4.3 makes for configMap volumes (named after the ConfigMap)
        config_volumes = [v["configMap"]["name"] for d in self.docs if d["kind"] in ("Deployment", "StatefulSet")
                          for v in d["spec"]["template"]["spec"].get("volumes", []) if "configMap" in v]
        for v in [*self.volumes, *dict.fromkeys(config_volumes)]:
            if podman("volume", "exists", v, check=False).returncode == 0:
                proc = podman("volume", "rm", "--force", v, check=False)
                if proc.returncode != 0:
                    problems.append(f"volume rm {v}: {proc.stderr.strip()[-300:]}")
        if self.broker is not None:
            self.broker.stop()
        if self.netproxy_pid:
            from tests.deploy.broker import stop_process

            stop_process(self.netproxy_pid)
            self.netproxy_pid = None
        if problems:
            log("down: " + "; ".join(problems))
        for p in [*self.state_dir.glob("play-*.yaml"), *self.state_dir.glob("netproxy-*.json")]:
            p.unlink()
        shutil.rmtree(self.state_dir / "broker", ignore_errors=True)
        self.state_file.unlink(missing_ok=True)

    # -- state

    def _save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "broker": self.broker.state() if self.broker else None,
            "netproxy_pid": self.netproxy_pid,
            "image": self.image.__dict__ if self.image else None,
            "ports": {s: p.__dict__ for s, p in self.ports.items()},
            "volumes": self.volumes,
            "sets": self.sets,
            "timings": self.timings,
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    @classmethod
    def load(cls, state_dir: Path = STATE_DIR) -> "LocalChart":
        state = json.loads((state_dir / "state.json").read_text())
        chart = cls(state_dir=state_dir, sets=state.get("sets") or {}, volumes=state.get("volumes") or [],
                    timings=state.get("timings") or {}, netproxy_pid=state.get("netproxy_pid"))
        if state.get("broker"):
            b = state["broker"]
            chart.broker = DurableBroker(Path(b["root"]), b["port"], b["s3_port"], b.get("tansu_pid"),
                                         b.get("s3_pid"), b.get("starts", 0), b.get("log_paths") or {})
        if state.get("image"):
            chart.image = ImageInfo(**state["image"])
        chart.ports = {s: Ports(**p) for s, p in (state.get("ports") or {}).items()}
        if chart.image and chart.broker and chart.ports:
            chart.docs = render(chart.values())
        return chart

    def __enter__(self) -> "LocalChart":
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


# ---- command line ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/local-chart.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["up", "down", "status", "build"])
    ap.add_argument("--set-json", action="append", default=[], metavar="KEY=JSON",
                    help="an extra chart value, as helm's --set-json (e.g. 'config.sampler.max_paths=40')")
    a = ap.parse_args(argv)
    if a.command == "build":
        info = ensure_image()
        print(json.dumps(info.__dict__))
        return 0
    if a.command == "up":
        sets = {}
        for kv in a.set_json:
            k, _, v = kv.partition("=")
            sets[k] = json.loads(v)
        chart = LocalChart(sets=sets).up()
        print(f"image:     {chart.image.name} ({chart.image.size_bytes / 1e6:.0f} MB)")
        print(f"bootstrap: {chart.broker.bootstrap}")
        for s in SERVICES:
            print(f"{s + ':':10} grpc {chart.target(s)}  metrics http://127.0.0.1:{chart.ports[s].metrics}/metrics")
        targets = " ".join(f"--target {chart.target(s)}" for s in SERVICES)
        print(f"\n.venv/bin/linksyn push examples/seeds.jsonl --bootstrap {chart.broker.bootstrap}")
        print(f".venv/bin/linksyn status {targets}")
        return 0
    if not (STATE_DIR / "state.json").exists():
        print("local-chart: nothing is up", file=sys.stderr)
        return 0 if a.command == "down" else 1
    chart = LocalChart.load()
    if a.command == "down":
        chart.down()
        print("local-chart: down (pods, containers, volumes and broker removed)")
        return 0
    for s in SERVICES:
        st = chart.container_state(s)
        print(f"{s:10} {st.get('Status', 'absent'):10} health {chart.health(s)}")
    print(f"bootstrap: {chart.broker.bootstrap if chart.broker else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
