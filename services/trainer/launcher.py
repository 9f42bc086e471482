"""Training runs on a cluster: a Kubernetes Job running torchrun on the GPU pool.

`job_manifest` is pure (a dict the API server accepts: tests validate it with kubernetes-validate);
`KubernetesLauncher` sends it with the official `kubernetes` client and reads the Job's status back.
Multi-node runs use an Indexed Job: pod index = torchrun node rank, pod 0's stable hostname is the rendezvous.

No shell runs: the container's command is torchrun's argv, and the pod index reaches torchrun as PET_NODE_RANK (its
--node-rank from the environment) through the downward API. Kubernetes still expands $(VAR) in args, so every '$'
of a request's text is doubled ('$$' is a literal '$').
"""

from __future__ import annotations

import re
from typing import Any

from linksyn.trainer.config import JobConfig

_DNS = re.compile(r"[^a-z0-9-]+")
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
"""Where an Indexed Job's pod finds its index (the downward API)."""


def _literal(arg: str) -> str:
    """`arg` as Kubernetes passes it on literally: $(VAR) references in args are expanded, '$$' is a '$'."""
    return arg.replace("$", "$$")


def job_name(run_id: str) -> str:
    """A DNS-1123 name for the run's Job (at most 52 characters, so pod names stay under 63)."""
    name = _DNS.sub("-", f"linksyn-train-{run_id}".lower()).strip("-")
    return name[:52].rstrip("-")


def job_manifest(run_id: str, cfg: JobConfig, model: str, data: str, out_dir: str, max_steps: int,
                 config_map: str | None = None) -> dict[str, Any]:
    """The batch/v1 Job that runs `linksyn train` under torchrun on `cfg.nodes` pods of `cfg.gpus_per_pod` GPUs."""
    name = job_name(run_id)
    nproc = max(1, cfg.gpus_per_pod)
    torchrun = [
        "torchrun",
        f"--nnodes={cfg.nodes}",
        f"--nproc-per-node={nproc}",
        f"--master-addr={name}-0.{name}",
        "--master-port=29500",
        "--no-python", "linksyn",
        "train", "--data", data, "--model", model, "--out", out_dir, "--run-id", run_id,
        "--max-steps", str(max_steps),
    ]
    labels = {**cfg.labels, "app.kubernetes.io/name": "linksyn", "app.kubernetes.io/component": "training",
              "linksyn.io/run-id": _DNS.sub("-", run_id.lower())[:63].strip("-")}
    resources: dict[str, Any] = {"requests": {"cpu": cfg.cpu, "memory": cfg.memory}}
    if cfg.gpus_per_pod:
        resources["limits"] = {"nvidia.com/gpu": str(cfg.gpus_per_pod)}  # quantities are strings in the API
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}},
                                     {"name": "shm", "emptyDir": {"medium": "Memory"}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "shm", "mountPath": "/dev/shm"}]
    env: list[dict[str, Any]] = [
        {"name": "PET_NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}}},
        {"name": "HOME", "value": "/tmp"},  # the root filesystem is read-only: caches go to the emptyDir
        {"name": "HF_HOME", "value": "/tmp/hf"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    if cfg.data_pvc:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": cfg.data_pvc}})
        mounts.append({"name": "data", "mountPath": "/var/lib/linksyn"})
    if config_map:
        volumes.append({"name": "config", "configMap": {"name": config_map}})
        mounts.append({"name": "config", "mountPath": "/etc/linksyn", "readOnly": True})
        env.append({"name": "LINKSYN_CONFIG", "value": "/etc/linksyn/config.yaml"})
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "subdomain": name,
        "automountServiceAccountToken": False,  # training never talks to the API server
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "nodeSelector": dict(cfg.node_selector),
        "tolerations": [dict(t) for t in cfg.tolerations],
        "containers": [{
            "name": "train",
            "image": cfg.image,
            "command": [torchrun[0]],
            "args": [_literal(a) for a in torchrun[1:]],
            "env": env,
            "resources": resources,
            "volumeMounts": mounts,
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        }],
        "volumes": volumes,
    }
    if cfg.service_account:
        pod_spec["serviceAccountName"] = cfg.service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": cfg.namespace, "labels": labels},
        "spec": {
            "completions": cfg.nodes,
            "parallelism": cfg.nodes,
            "completionMode": "Indexed",
            "backoffLimit": cfg.backoff_limit,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def headless_service_manifest(run_id: str, cfg: JobConfig) -> dict[str, Any]:
    """The headless Service that gives pod 0 its stable name `<job>-0.<job>` for torchrun's rendezvous."""
    name = job_name(run_id)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": cfg.namespace},
        "spec": {"clusterIP": "None", "selector": {"job-name": name}, "ports": [{"name": "c10d", "port": 29500}]},
    }


class KubernetesLauncher:
    """Creates and watches training Jobs through the Kubernetes API (in-cluster config, else kubeconfig)."""

    def __init__(self, cfg: JobConfig, batch_api: Any = None, core_api: Any = None) -> None:
        self.cfg = cfg
        if batch_api is None or core_api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            batch_api = batch_api or client.BatchV1Api()
            core_api = core_api or client.CoreV1Api()
        self.batch = batch_api
        self.core = core_api

    def launch(self, run_id: str, model: str, data: str, out_dir: str, max_steps: int,
               config_map: str | None = None) -> str:
        if self.cfg.nodes > 1:
            self.core.create_namespaced_service(self.cfg.namespace, headless_service_manifest(run_id, self.cfg))
        manifest = job_manifest(run_id, self.cfg, model, data, out_dir, max_steps, config_map)
        self.batch.create_namespaced_job(self.cfg.namespace, manifest)
        return manifest["metadata"]["name"]

    def status(self, run_id: str) -> str:
        """'pending', 'running', 'succeeded' or 'failed'."""
        job = self.batch.read_namespaced_job_status(job_name(run_id), self.cfg.namespace)
        st = job.status
        if st.succeeded and st.succeeded >= self.cfg.nodes:
            return "succeeded"
        if st.failed and st.failed > self.cfg.backoff_limit:
            return "failed"
        return "running" if st.active else "pending"
