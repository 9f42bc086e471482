"""Settings of the sampler service (a section of LinksynConfig: `sampler:` in YAML, `LINKSYN_SAMPLER__*` in the env)."""

from __future__ import annotations

from typing import Literal

from linksyn.common.config import Section
from linksyn.common.grades import check_grade_keys
from linksyn.common.modes import check_mode_names
from pydantic import Field, model_validator


class WalkParams(Section):
    """Everything that shapes a walk (the domain's parameters; SamplerConfig is a WalkParams plus the service's own
    settings). Immutable in use: `Sampler.set_params` replaces it with a validated copy."""

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
    mode_mix: dict[str, float] = {"link": 0.6, "multi_grade": 0.2, "hard": 0.2}
    """Synthesis mode shares drawn per path (the modes of linksyn.common.modes: link, multi_grade, hard)."""
    link_retries: int = Field(default=3, ge=0)
    """A link path needs at least 2 seeds (consecutive ones sharing a path KP); one whose edges give fewer is walked
    again up to this many times before link_fallback applies."""
    link_fallback: Literal["single_seed", "drop"] = "single_seed"
    """What becomes of a link path still short of 2 seeds after link_retries: 'single_seed' moves it to
    multi_grade or hard (by their shares in mode_mix; equally if both are 0), 'drop' discards it and draws another
    walk (on a graph with no link path at all, drawing then fails after 20 batches with the reason). Both are
    counted (Stats `link_paths_short`, metric linksyn_sampler_short_link_paths_total)."""
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

    @model_validator(mode="after")
    def _bounds(self) -> "WalkParams":
        if self.min_kps > self.max_kps:
            raise ValueError(f"sampler.min_kps ({self.min_kps}) must be <= sampler.max_kps ({self.max_kps})")
        if self.min_seeds > self.max_seeds:
            raise ValueError(f"sampler.min_seeds ({self.min_seeds}) must be <= sampler.max_seeds ({self.max_seeds})")
        check_mode_names(self.mode_mix, "sampler.mode_mix")
        if self.mode_mix.get("link", 0) > 0 and self.max_seeds < 2:
            raise ValueError(f"sampler.max_seeds is {self.max_seeds}, but a link path carries at least 2 seeds: raise "
                             "max_seeds or take 'link' out of sampler.mode_mix")
        if not self.mode_mix or sum(self.mode_mix.values()) <= 0 or min(self.mode_mix.values()) < 0:
            raise ValueError(f"sampler.mode_mix needs non-negative shares with a positive sum, got {self.mode_mix}")
        return self

    def walk_params(self) -> "WalkParams":
        """Just the walk parameters (of a SamplerConfig: without the service's settings)."""
        return WalkParams(**{name: getattr(self, name) for name in WalkParams.model_fields})

    def with_changes(self, **changes: object) -> "WalkParams":
        """A validated copy with `changes` applied (ValueError naming the field for a bad value)."""
        return WalkParams.model_validate(self.walk_params().model_dump() | changes)


class SamplerConfig(WalkParams):
    """The sampler stage: value-function walks over graph snapshots (DESIGN.md, "Knowledge value function"): the
    walk parameters (WalkParams) plus targets, snapshot source, pacing, limits and state."""

    discipline_targets: dict[str, float] = {}
    """Discipline -> target share of paths, a path's discipline being its start KP's (normalised over the
    disciplines present; a present discipline not listed gets 0). Empty: see `default_targets`."""
    difficulty_targets: dict[str, float] = {}
    """Difficulty grade "1".."5" -> target share of paths, by the start KP's modal grade (as discipline_targets).
    Empty: see `default_targets`."""
    default_targets: Literal["uniform", "natural"] = "natural"
    """Targets of an attribute with no explicit shares: 'uniform' over the classes present in the snapshot, or
    'natural' (each class's share of KP popularity, i.e. of seed attachments)."""
    rng_seed: int = 0
    """Seed of the sampler's random generator: same seed, snapshot and calls give the same paths."""
    graph_target: str = ""
    """host:port of the graph service to stream snapshots from (`linksyn serve sampler`); empty: use snapshot_store."""
    graph_tls_ca: str = ""
    """CA bundle (PEM file) to verify the graph service's TLS certificate against when it serves TLS
    (server.tls_cert); empty: plaintext to graph_target."""
    snapshot_store: str = ""
    """Snapshot store URL/directory (the graph service's SnapshotStore) to load from when graph_target is empty.
    Empty too: graph.snapshot_url of the same configuration (linksyn.config fills it in), the store the graph
    service writes when the services share one config file and one store."""
    refresh_s: float = Field(default=30.0, gt=0)
    """How often to look for a newer snapshot; coverage counts carry over (keyed by KP text and seed id)."""
    lag_target: int = Field(default=2000, ge=1)
    """Paths the synth group may have unconsumed on linksyn.paths; the sampler tops the lag up to this and waits."""
    lag_group: str = "linksyn.synth"
    """Consumer group of synth (`linksyn.<service>`) whose lag on linksyn.paths is kept near lag_target."""
    budget_service: str = "synth"
    """The service that consumes paths: its spend per path (from the usage topic) is what the budget projects when
    it decides how many more paths it can pay for (see the `budget` section)."""
    lag_poll_s: float = Field(default=0.5, gt=0)
    """Wait between lag checks when the lag is at its target."""
    max_paths: int = Field(default=0, ge=0)
    """Paths the producer emits in all before it stops; 0 = no fixed number (see paths_per_seed). Counted across
    restarts as far as the state file (state_path) records them. For bounded runs: tests, a fixed-size dataset."""
    paths_per_seed: float = Field(default=0.0, ge=0)
    """When max_paths is 0: stop after this many paths per seed of the first snapshot walked, at most
    paths_per_seed_cap; 0 = run until stopped (the service default). `linksyn run` sets 2 unless max_paths or this
    is set."""
    paths_per_seed_cap: int = Field(default=10_000, ge=1)
    """Upper bound of the limit that paths_per_seed gives."""

    def path_limit(self, n_seeds: int) -> int | None:
        """Paths to emit in all, given the seeds of the first snapshot walked; None = until stopped."""
        if self.max_paths:
            return self.max_paths
        if self.paths_per_seed:
            return min(max(1, round(self.paths_per_seed * n_seeds)), self.paths_per_seed_cap)
        return None

    state_path: str = ""
    """File where coverage, seed-use and realised-share counters persist (atomically); empty: not persisted."""
    persist_every: int = Field(default=10_000, ge=1)
    """Persist the counters after this many emitted paths (and always on close)."""
    probe_step: float = Field(default=0.1, ge=0, le=1)
    """Largest total-variation move of the targets per probe report (toward the buckets with a deficit)."""

    @model_validator(mode="after")
    def _targets(self) -> "SamplerConfig":
        for name, shares in (("discipline_targets", self.discipline_targets),
                             ("difficulty_targets", self.difficulty_targets)):
            if any(v < 0 for v in shares.values()):
                raise ValueError(f"sampler.{name} has negative shares: {shares}")
        check_grade_keys(self.difficulty_targets, "sampler.difficulty_targets")
        return self
