"""Settings of the sampler service (a section of LinksynConfig: `sampler:` in YAML, `LINKSYN_SAMPLER__*` in the env)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from linksyn.common.config import Section


class SamplerConfig(Section):
    """The sampler stage: value-function walks over graph snapshots (DESIGN.md, "Knowledge value function")."""

    alpha: float = 0.25
    """Popularity exponent of V = pop^alpha * (1 + cov)^-beta: > 0 favours core (popular) KPs."""
    beta: float = 2.0
    """Coverage exponent of V: > 0 pushes walks toward KPs that few emitted paths contain yet. With alpha 0.25 and
    beta 2 the value-guided walks cover clearly more KPs than uniform and weight-only walks at equal path counts
    (bench/sampler.py; alpha 0.5 / beta 1 covered fewer than uniform walks)."""
    gamma: float = 1.0
    """Edge-weight exponent of the transition w(u,v)^gamma * V(v) * D(v) (0 ignores co-occurrence counts)."""
    eta: float = Field(default=3.0, ge=0)
    """Feedback gain of the distribution gate: per attribute D = (target/q) * (target/max(eps, realised))^eta, where
    realised is the class's share of emitted paths (a path's class is its start KP's) and q its share of the start
    mass V (the feed-forward part, which aims the start draw at the target in expectation; see
    linksyn.sampler.value). 0 keeps only the feed-forward. Stable without overshoot while
    control_fraction * (1 + eta) < 1 (linearised, one attribute)."""
    eps: float = Field(default=1e-3, gt=0)
    """Floor of a realised share in the feedback factor, so an unseen class gets a large but finite boost."""
    gate: bool = True
    """Apply the distribution gate D; False walks by V alone (targets are then not steered)."""
    gate_max: float = Field(default=4.0, ge=1)
    """The feedback factor (target/max(eps, realised))^eta is clipped to [1/gate_max, gate_max], so a class that the
    first small batches happened to miss is not flooded."""
    min_kps: int = Field(default=2, ge=2)
    """Fewest KPs on a path; a walk that gets stuck earlier is dropped and another one is drawn."""
    max_kps: int = Field(default=6, ge=2)
    """Most KPs on a path (the walk length is drawn uniformly in [min_kps, max_kps])."""
    min_seeds: int = Field(default=3, ge=1)
    """Fewest seeds gathered per path (the count is drawn uniformly in [min_seeds, max_seeds]); a path whose edges
    share fewer distinct seeds carries what it has."""
    max_seeds: int = Field(default=5, ge=1)
    """Most seeds gathered per path."""
    seed_scan_cap: int = Field(default=64, ge=1)
    """Most candidate seeds examined per edge when picking the least-used shared seed: an edge shared by more seeds
    is scanned over a random cyclic window of this size (exact least-used when the edge has at most this many)."""
    discipline_targets: dict[str, float] = {}
    """Discipline -> target share of paths, a path's discipline being its start KP's (normalised over the
    disciplines present; a present discipline not listed gets 0). Empty: see `default_targets`."""
    difficulty_targets: dict[str, float] = {}
    """Difficulty grade "1".."5" -> target share of paths, by the start KP's modal grade (as discipline_targets).
    Empty: see `default_targets`."""
    default_targets: Literal["uniform", "natural"] = "natural"
    """Targets of an attribute with no explicit shares: 'uniform' over the classes present in the snapshot, or
    'natural' (each class's share of KP popularity, i.e. of seed attachments)."""
    mode_mix: dict[str, float] = {"link": 0.6, "multi_grade": 0.2, "hard": 0.2}
    """Synthesis mode shares drawn per path (link, multi_grade, hard)."""
    walker: Literal["value", "uniform", "weight"] = "value"
    """'value' (V*D guided), 'uniform' (MathScale-style baseline: uniform start and neighbour), 'weight'
    (edge-weight-only baseline: uniform start, neighbour proportional to w^gamma)."""
    batch_size: int = Field(default=65_536, ge=1, le=1 << 22)
    """Most walks advanced together; V and D are refreshed between batches (coverage counts are per batch). Large
    batches amortise the per-batch normalisation of the value walker's rows over the whole graph (see
    linksyn.sampler.walk); control_fraction keeps early batches small."""
    min_batch: int = Field(default=64, ge=1)
    """Smallest committed batch (see control_fraction). Small first batches matter for coverage: within a batch V
    is fixed, so the walks of one batch do not steer away from each other's KPs."""
    control_fraction: float = Field(default=0.2, gt=0)
    """A committed batch is at most this fraction of the paths emitted so far (at least min_batch): D's feedback
    on the realised shares stays fine-grained while the history is short (keep control_fraction * (1 + eta) < 1)."""
    rng_seed: int = 0
    """Seed of the sampler's random generator: same seed, snapshot and calls give the same paths."""
    graph_target: str = ""
    """host:port of the graph service to stream snapshots from (`linksyn serve sampler`); empty: use snapshot_store."""
    graph_tls_ca: str = ""
    """CA bundle (PEM file) to verify the graph service's TLS certificate against when it serves TLS
    (server.tls_cert); empty: plaintext to graph_target."""
    snapshot_store: str = ""
    """Snapshot store URL/directory (the graph service's SnapshotStore) to load from when graph_target is empty,
    e.g. in `linksyn run`."""
    refresh_s: float = Field(default=30.0, gt=0)
    """How often to look for a newer snapshot; coverage counts carry over (keyed by KP text and seed id)."""
    lag_target: int = Field(default=2000, ge=1)
    """Paths the synth group may have unconsumed on linksyn.paths; the sampler tops the lag up to this and waits."""
    lag_group: str = "linksyn.synth"
    """Consumer group of synth (`linksyn.<service>`) whose lag on linksyn.paths is kept near lag_target."""
    lag_poll_s: float = Field(default=0.5, gt=0)
    """Wait between lag checks when the lag is at its target."""
    embedded_paths: int = Field(default=0, ge=0)
    """Paths `linksyn run` emits before the sampler stops; 0 = 2 per seed of the first snapshot, capped at
    embedded_paths_cap."""
    embedded_paths_cap: int = Field(default=10_000, ge=1)
    """Upper bound of the automatic embedded_paths."""
    max_paths: int = Field(default=0, ge=0)
    """Paths `linksyn serve sampler` emits in all before its producer stops (0 = unbounded, the service default).
    Counted across restarts as far as the state file (state_path) records them; the embedded run uses
    embedded_paths instead. For bounded runs: tests, a fixed-size dataset."""
    state_path: str = ""
    """File where coverage, seed-use and realised-share counters persist (atomically); empty: not persisted."""
    persist_every: int = Field(default=10_000, ge=1)
    """Persist the counters after this many emitted paths (and always on close)."""
    probe_step: float = Field(default=0.1, ge=0, le=1)
    """Largest total-variation move of the targets per probe report (toward the buckets with a deficit)."""

    @model_validator(mode="after")
    def _bounds(self) -> "SamplerConfig":
        if self.min_kps > self.max_kps:
            raise ValueError(f"sampler.min_kps ({self.min_kps}) must be <= sampler.max_kps ({self.max_kps})")
        if self.min_seeds > self.max_seeds:
            raise ValueError(f"sampler.min_seeds ({self.min_seeds}) must be <= sampler.max_seeds ({self.max_seeds})")
        bad = set(self.mode_mix) - {"link", "multi_grade", "hard"}
        if bad:
            raise ValueError(f"sampler.mode_mix has unknown modes {sorted(bad)}; known: link, multi_grade, hard")
        if not self.mode_mix or sum(self.mode_mix.values()) <= 0 or min(self.mode_mix.values()) < 0:
            raise ValueError(f"sampler.mode_mix needs non-negative shares with a positive sum, got {self.mode_mix}")
        for name, shares in (("discipline_targets", self.discipline_targets),
                             ("difficulty_targets", self.difficulty_targets)):
            if any(v < 0 for v in shares.values()):
                raise ValueError(f"sampler.{name} has negative shares: {shares}")
        bad_grades = set(self.difficulty_targets) - {"1", "2", "3", "4", "5"}
        if bad_grades:
            raise ValueError(f"sampler.difficulty_targets keys must be grades '1'..'5', got {sorted(bad_grades)}")
        return self
