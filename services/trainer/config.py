"""Settings of the trainer service (a section of LinksynConfig: `trainer:` in YAML, `LINKSYN_TRAINER__*` in the env)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from linksyn.common.config import Section


class DataConfig(Section):
    """What the trainer reads and how it turns records into packed token sequences."""

    template: str = "Question: {question}\nAnswer: {answer}"
    """How one QA record becomes training text (str.format over the record's fields)."""
    general_corpus: str | None = None
    """Plain-text file(s) of general text (glob allowed) mixed in to keep general ability; None = QA only."""
    general_ratio: float = Field(default=0.3, ge=0.0, lt=1.0)
    """Share of training tokens drawn from the general corpus (e.g. 0.3 = 30%)."""
    seq_len: int = Field(default=512, ge=8)
    """Tokens per packed sequence; documents are joined with EOS and split across sequences (no padding)."""
    shuffle_buffer: int = Field(default=1024, ge=1)
    """Documents held for the deterministic streaming shuffle."""
    seed: int = 0
    """Seed of the shuffle and of the general/QA interleaving."""
    max_record_chars: int = Field(default=20_000, ge=100)
    """Longer rendered records are truncated to this many characters."""


class TrainConfig(Section):
    """The optimisation."""

    lr: float = Field(default=3e-5, gt=0)
    """Peak learning rate (AdamW)."""
    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW weight decay."""
    warmup_steps: int = Field(default=10, ge=0)
    """Linear warmup steps before the cosine decay."""
    max_steps: int = Field(default=100, ge=1)
    """Optimizer steps of a run."""
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    """The cosine decays to lr * min_lr_ratio."""
    micro_batch: int = Field(default=4, ge=1)
    """Sequences per forward pass (per process)."""
    grad_accum: int = Field(default=1, ge=1)
    """Micro-batches per optimizer step."""
    grad_clip: float = Field(default=1.0, gt=0)
    """Gradient norm clip."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """'auto' = bf16 autocast on CUDA, fp32 on CPU."""
    checkpoint_every: int = Field(default=50, ge=1)
    """Steps between checkpoints (a final one is always written)."""
    keep_checkpoints: int = Field(default=2, ge=1)
    """Checkpoints kept on disk (older ones are deleted)."""
    log_every: int = Field(default=1, ge=1)
    """Steps between log lines (JSONL and metrics)."""
    seed: int = 0
    """Seed of model init (for tiny models) and dropout."""


class ProbeConfig(Section):
    """Model probes: multiple-choice benchmarks scored by answer log-likelihood."""

    benchmarks: list[str] = []
    """Benchmarks as KIND:PATH, e.g. 'mmlu:/data/mmlu/test', 'cmmlu:/data/cmmlu/test'."""
    max_per_subject: int | None = None
    """Questions per subject (None = all); a quick probe during training uses a few dozen."""
    batch_size: int = Field(default=16, ge=1)
    """Questions scored per forward pass."""
    target_accuracy: float = Field(default=0.5, ge=0, le=1)
    """Deficit = target (or the reference run's accuracy, when given) minus accuracy, per bucket."""
    max_context_tokens: int = Field(default=1024, ge=16)
    """Longer questions are truncated from the left."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Weights and activations of the probed model. 'bf16' is faster on GPUs and on CPUs with AVX512-BF16
    (bench/probe.py: 1.3x fp32 on 2 shared cores); near-ties between letters can flip, so compare checkpoints
    probed at the same precision."""


class JobConfig(Section):
    """Kubernetes Jobs the trainer launches on a cluster (torchrun on the GPU pool)."""

    namespace: str = "default"
    """Namespace of the Jobs."""
    image: str = "ghcr.io/linksyn/linksyn-cuda:0.1.0"
    """Image of the training pods (the CUDA image)."""
    gpus_per_pod: int = Field(default=8, ge=0)
    """nvidia.com/gpu limit and torchrun --nproc-per-node."""
    nodes: int = Field(default=1, ge=1)
    """Pods (torchrun nodes) of an indexed Job."""
    node_selector: dict[str, str] = {"nvidia.com/gpu.present": "true"}
    """Node labels of the GPU pool."""
    tolerations: list[dict[str, str]] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    """Tolerations of the GPU pool."""
    cpu: str = "8"
    """CPU request per pod."""
    memory: str = "64Gi"
    """Memory request per pod."""
    data_pvc: str | None = None
    """PersistentVolumeClaim holding datasets and checkpoints, mounted at /var/lib/linksyn (None = object storage URLs)."""
    service_account: str | None = None
    """Service account of the pods."""
    backoff_limit: int = Field(default=2, ge=0)
    """Pod retries before the Job fails (runs resume from their last checkpoint)."""
    labels: dict[str, str] = {}
    """Extra labels of the Job's pods (the chart sets app.kubernetes.io/instance, so the release's NetworkPolicies
    cover them)."""


class TrainerConfig(Section):
    """The trainer stage: continual pre-training on synthesized QA, and probes."""

    model: str = "embedded"
    """Model spec to train (hf:PATH_OR_ID, or 'embedded' = the packaged SmolLM2-135M-Instruct)."""
    dataset: str = "out/dataset"
    """Dataset directory (or shard file) runs train on by default: the sink's output."""
    out_dir: str = "out/trainer"
    """Where runs write checkpoints and logs (one subfolder per run id)."""
    data: DataConfig = DataConfig()
    """Data rendering, mixing and packing."""
    train: TrainConfig = TrainConfig()
    """Optimisation."""
    probe: ProbeConfig = ProbeConfig()
    """Probes."""
    launcher: Literal["inprocess", "kubernetes"] = "inprocess"
    """Where runs execute: a thread of this process, or a Kubernetes Job running torchrun."""
    job: JobConfig = JobConfig()
    """Kubernetes Job settings (launcher 'kubernetes')."""
    start_after_tokens: int = Field(default=2_000_000, ge=1)
    """The service starts a run once this many new QA tokens (approximate: characters / 4) arrived."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Training device ('auto' = CUDA when available)."""
    allowed_models: list[str] = []
    """Model specs a StartRun or Probe request may name besides trainer.model (e.g. 'hf:Qwen/Qwen2.5-0.5B'); an hf:
    path under an allowed root (an earlier run's checkpoint) is allowed too. Anything else is INVALID_ARGUMENT."""
    allowed_roots: list[str] = []
    """Folders (or URL prefixes such as s3://bucket/data) a request's data, hf: model paths and benchmark folders
    must lie under, besides trainer.dataset and trainer.out_dir (`..` and, in-process, symbolic links resolved)."""
    allow_download: bool = False
    """Let a hub id (hf:ORG/NAME) be fetched from the Hugging Face Hub when it is not in the local cache (training
    and probes). Off by default: nothing is downloaded unless asked for."""
