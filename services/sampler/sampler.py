"""The sampler's domain: walks over one graph snapshot under the value function, targets and counters. No I/O.

`Sampler.draw(n)` returns a `PathBatch` of n paths (arrays; `linksyn.sampler.records` turns them into WalkPath
records). With commit=True the counters (coverage, seed use, realised shares, path numbers) advance, so the next
batch's V and D see them; commit=False is a preview that leaves every counter and the main random stream alone.

Walks that get stuck before `min_kps` KPs (no unvisited neighbour with positive weight) are dropped and more walks
are drawn until n paths have the minimum length: the paths are therefore distributed as walks conditioned on
reaching min_kps. Within one batch V and D are fixed; counters update between batches. A committed batch is at most
`control_fraction` of the paths emitted so far (at least `min_batch`, at most `batch_size`): the feedback part of
the gate D reacts to the realised shares, and it is stable without overshoot while
control_fraction * (1 + eta) < 1 (see linksyn.sampler.value for the gate).

A `link` path carries at least two seeds, and consecutive seeds share a KP of the path (pick_seeds chains them): a
link path whose edges share only one seed is walked again, up to `link_retries` times, and then goes to a
single-seed mode (multi_grade or hard; `link_fallback: single_seed`, counted in `link_stats`) or is dropped
(`link_fallback: drop`). On a graph too sparse for links (every edge from one seed only) every link path ends in a
single-seed mode; a graph where no walk reaches min_kps (empty, or no KP with a neighbour) raises UnwalkableGraph
with the reason, at once or after 20 batches without a path.

A path's discipline and difficulty (its target_discipline / target_difficulty, and what the realised shares count)
are its start KP's: the start draw, proportional to V*D, is what sets the mix; D in the transitions keeps the walk
mostly within its class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from linksyn.common.grades import GRADE_KEYS
from linksyn.common.modes import HARD, LINK, MULTI_GRADE, mode_value
from linksyn.common.snapshots.graph import GraphSnapshot
from linksyn.sampler.config import WalkParams
from linksyn.sampler.counters import Counters
from linksyn.sampler.seeds import EdgeSeedIndex, pick_seeds
from linksyn.sampler.targets import Targets, resolve_shares
from linksyn.sampler.value import (
    feedback_targets,
    knowledge_value,
    rake,
    shares,
    total_variation,
)
from linksyn.sampler.walk import (
    RowMass,
    UnwalkableGraph,
    Walker,
    WalkGraph,
    row_mass,
    walk_with_positions,
)


@dataclass
class PathBatch:
    """n paths as arrays (row i is path i)."""

    graph_version: int
    walker: str
    kps: np.ndarray  # int64 (n, max_kps), -1 padded
    n_kps: np.ndarray  # int64 (n,)
    seeds: np.ndarray  # int64 (n, max_seeds), -1 padded, consecutive seeds share a KP
    n_seeds: np.ndarray  # int64 (n,)
    scores: np.ndarray  # float64 (n, max_kps): V*D of each KP when it was drawn, 0 padded
    discipline: np.ndarray  # int64 (n,): target discipline index (the start KP's discipline), -1 unknown
    difficulty: np.ndarray  # int64 (n,): target grade 1..5 (the start KP's modal grade), 0 unknown
    mode: np.ndarray  # int64 (n,): SynthesisMode value (linksyn.common.modes)
    number: np.ndarray  # int64 (n,): running path number (the counter in the path id)

    def __len__(self) -> int:
        return len(self.n_kps)

    def kp_lists(self) -> list[list[int]]:
        return [row[:k].tolist() for row, k in zip(self.kps, self.n_kps)]

    def seed_lists(self) -> list[list[int]]:
        return [row[:k].tolist() for row, k in zip(self.seeds, self.n_seeds)]


class Sampler:
    """Walks one snapshot at a time; swap() moves to a newer one keeping the counters."""

    def __init__(
        self,
        snapshot: GraphSnapshot,
        params: WalkParams = WalkParams(),
        targets: Targets = Targets(),
        rng_seed: int = 0,
        counters: Counters | None = None,
    ) -> None:
        self.params = params
        self.targets = targets
        self._rng = np.random.default_rng(rng_seed)
        self._preview_rng = np.random.default_rng([rng_seed, 1])
        self.link_stats = {"retried": 0, "to_single_seed": 0, "dropped": 0}
        """Link paths with fewer than 2 seeds: walks redrawn, paths moved to a single-seed mode, paths dropped."""
        self._load(snapshot)
        self.counters = counters if counters is not None else Counters.empty(snapshot)
        if len(self.counters.kp_cov) != snapshot.n_kps or len(self.counters.seed_use) != snapshot.n_seeds:
            raise ValueError(
                f"counters are sized for {len(self.counters.kp_cov)} KPs / {len(self.counters.seed_use)} seeds, "
                f"the snapshot has {snapshot.n_kps} / {snapshot.n_seeds}"
            )
        self.resolved_targets()  # fail early on targets that select nothing

    # --- snapshot --------------------------------------------------------------------------------------------

    def _load(self, snap: GraphSnapshot) -> None:
        self.snapshot = snap
        self.graph = WalkGraph(snap.indptr.astype(np.int64, copy=False), snap.indices)
        self._has_nbr = np.diff(self.graph.indptr) > 0
        self._kp_disc = snap.kp_discipline.astype(np.int64)
        self._kp_grade = snap.kp_difficulty().astype(np.int64)  # 0 unknown
        self._kp_diff = self._kp_grade - 1  # class index, -1 unknown
        self._pop = snap.kp_popularity
        n_disc = len(snap.disciplines)
        kd = self._kp_disc[self._kp_disc >= 0]
        kg = self._kp_diff[self._kp_diff >= 0]
        self._disc_present = np.bincount(kd, minlength=n_disc) > 0
        self._diff_present = np.bincount(kg, minlength=5) > 0
        self._disc_natural = np.bincount(kd, weights=self._pop[self._kp_disc >= 0], minlength=n_disc)
        self._diff_natural = np.bincount(kg, weights=self._pop[self._kp_diff >= 0], minlength=5)
        # (discipline, grade) cell of each KP for the gate's start mass; unknown is the last row / column.
        disc_row = np.where(self._kp_disc >= 0, self._kp_disc, n_disc)
        self._cell = disc_row * 6 + np.where(self._kp_diff >= 0, self._kp_diff, 5)
        self._reach = self._has_nbr.astype(np.float64)
        self._edge_cache: tuple[float, np.ndarray | None] | None = None
        self._static_rows: tuple[tuple[str, float], RowMass] | None = None
        self._rows_buffer: RowMass | None = None  # the value walker's per-batch row_mass, reused in place
        self.seed_index = EdgeSeedIndex.build(
            snap.indptr, snap.indices, snap.seed_kp_indptr, snap.seed_kp_indices, edge_key=self.graph.keys
        )

    def fresh(self, params: WalkParams | None = None, targets: Targets | None = None, rng_seed: int = 0) -> "Sampler":
        """A new sampler on the same snapshot, sharing its indexes (no rebuild), with empty counters."""
        new = object.__new__(Sampler)
        new.__dict__.update(
            {k: v for k, v in self.__dict__.items() if k not in ("counters", "_rows_buffer", "_static_rows")}
        )
        new.params = params if params is not None else self.params
        new.targets = targets if targets is not None else self.targets
        new._rng = np.random.default_rng(rng_seed)
        new._preview_rng = np.random.default_rng([rng_seed, 1])
        new._rows_buffer = None
        new._static_rows = None
        new._edge_cache = None
        new.link_stats = {"retried": 0, "to_single_seed": 0, "dropped": 0}
        new.counters = Counters.empty(self.snapshot)
        new.resolved_targets()
        return new

    def swap(self, snap: GraphSnapshot) -> None:
        """Walk `snap` from now on; coverage and seed use carry over by KP text and seed id."""
        old = self.snapshot
        counters = self.counters.remapped(old, snap)
        self._load(snap)
        self.counters = counters

    # --- parameters and targets ------------------------------------------------------------------------------

    def set_params(self, **changes) -> None:
        self.params = self.params.with_changes(**changes)

    def set_targets(self, targets: Targets) -> None:
        old = self.targets
        self.targets = targets
        try:
            self.resolved_targets()
        except ValueError:
            self.targets = old
            raise

    def resolved_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Target shares over (snapshot disciplines, grades 1..5)."""
        t = self.targets
        disc = resolve_shares(t.discipline, self.snapshot.disciplines, self._disc_present, self._disc_natural, t.default)
        diff = resolve_shares(t.difficulty, GRADE_KEYS, self._diff_present, self._diff_natural, t.default)
        return disc, diff

    def resolved_target_dicts(self) -> tuple[dict[str, float], dict[str, float]]:
        disc, diff = self.resolved_targets()
        return (
            {c: float(s) for c, s, p in zip(self.snapshot.disciplines, disc, self._disc_present) if p},
            {c: float(s) for c, s, p in zip(GRADE_KEYS, diff, self._diff_present) if p},
        )

    def realised_shares(self) -> tuple[np.ndarray, np.ndarray]:
        """Realised shares of emitted paths (by their start KP's class) over the snapshot's present (disciplines,
        grades); paths whose start KP's class is unknown are not counted."""
        c = self.counters
        disc = np.array([c.discipline_counts.get(d, 0) for d in self.snapshot.disciplines], dtype=np.float64)
        diff = np.array([c.difficulty_counts.get(g, 0) for g in GRADE_KEYS], dtype=np.float64)
        return shares(disc * self._disc_present), shares(diff * self._diff_present)

    # --- the value function ----------------------------------------------------------------------------------

    def value(self) -> np.ndarray:
        p = self.params
        return knowledge_value(self._pop, self.counters.kp_cov, p.alpha, p.beta)

    def gate(self, value: np.ndarray | None = None) -> np.ndarray:
        """D per KP now (see linksyn.sampler.value): the class factors that make the start mass V*D hit the
        feedback-adjusted targets, scaled so that D only moves start mass between classes (total kept)."""
        p = self.params
        if not p.gate:
            return np.ones(self.snapshot.n_kps)
        v = self.value() if value is None else value
        t_disc, t_diff = self.resolved_targets()
        r_disc, r_diff = self.realised_shares()
        aim_disc = feedback_targets(t_disc, r_disc, p.eps, p.eta, p.gate_max)
        aim_diff = feedback_targets(t_diff, r_diff, p.eps, p.eta, p.gate_max)
        n_disc = len(self.snapshot.disciplines)
        start = v * self._reach
        mass = np.bincount(self._cell, weights=start, minlength=(n_disc + 1) * 6).reshape(n_disc + 1, 6)
        a, b = rake(mass, aim_disc, aim_diff)
        cell_factor = np.outer(np.append(a, 1.0), np.append(b, 1.0))
        moved = float((mass * cell_factor).sum())
        if moved > 0:
            cell_factor *= float(mass.sum()) / moved
        return cell_factor.ravel()[self._cell]

    def scores(self) -> np.ndarray:
        """V*D per KP now."""
        v = self.value()
        return v * self.gate(v)

    def _edge_weight(self) -> np.ndarray | None:
        g = self.params.gamma
        if self._edge_cache is None or self._edge_cache[0] != g:
            w = self.snapshot.weights
            self._edge_cache = (g, None if g == 0 else (w.astype(np.float64) if g == 1 else w.astype(np.float64) ** g))
        return self._edge_cache[1]

    def walker(self, scores: np.ndarray | None = None) -> Walker:
        """The current walker (value: V*D guided; uniform; weight: w^gamma only)."""
        kind = self.params.walker
        reachable = self._reach
        if kind == "value":
            s = self.scores() if scores is None else scores
            return Walker("value", s * reachable, s, self._edge_weight())
        if kind == "uniform":
            return Walker("uniform", reachable, None, None)
        if kind == "weight":
            return Walker("weight", reachable, None, self._edge_weight())
        raise ValueError(f"unknown walker {kind!r}; known: value, uniform, weight")

    # --- drawing paths ---------------------------------------------------------------------------------------

    def draw(self, n: int, commit: bool = True) -> PathBatch:
        """n paths. commit: count them (coverage, seed use, realised shares, path numbers) and use the main random
        stream; otherwise a preview that changes nothing."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        rng = self._rng if commit else self._preview_rng
        seed_use = self.counters.seed_use if commit else self.counters.seed_use.copy()
        parts: list[PathBatch] = []
        got = 0
        empty_batches = 0
        next_number = self.counters.paths_emitted
        while got < n:
            want = min(self.batch_size(next_number) if commit else self.params.batch_size, n - got)
            part = self._batch(want, rng, seed_use, next_number, commit)
            if len(part) == 0:
                empty_batches += 1
                if empty_batches >= 20:
                    raise UnwalkableGraph(
                        f"no path in 20 batches: no walk reached min_kps={self.params.min_kps} KPs, or (with "
                        f"link_fallback 'drop') none found the 2 seeds of a link path: the graph (version "
                        f"{self.snapshot.version}, {self.snapshot.n_kps} KPs, {self.snapshot.n_seeds} seeds) is too "
                        "sparse for such paths"
                    )
                continue
            empty_batches = 0
            if commit:
                self._count(part)
            next_number += len(part)
            parts.append(part)
            got += len(part)
        return _concat(parts, self.snapshot.version, self.params.walker, self.params)

    def batch_size(self, emitted: int) -> int:
        """Walks in the next committed batch: at most control_fraction of the paths emitted so far (at least
        min_batch), so D's feedback on the realised shares stays fine-grained while the history is short."""
        p = self.params
        return max(1, min(p.batch_size, max(p.min_batch, int(p.control_fraction * emitted))))

    def _walks(self, want: int, rng: np.random.Generator, seed_use: np.ndarray, walker: Walker,
               rows: RowMass | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`want` walks and their seeds, those stuck before min_kps dropped: (kps (m, max_kps), KPs reached (m,),
        seeds (m, max_seeds), seeds per path (m,))."""
        p = self.params
        lengths = rng.integers(p.min_kps, p.max_kps + 1, size=want)
        paths, reached, positions = walk_with_positions(
            self.graph, walker, lengths, rng, rows, rows_buffer=self._rows_buffer
        )
        keep = reached >= p.min_kps
        paths, reached, positions = paths[keep], reached[keep], positions[keep]
        m = len(reached)
        kps = np.full((m, p.max_kps), -1, dtype=np.int64)
        kps[:, : paths.shape[1]] = paths[:, : p.max_kps]
        k = rng.integers(p.min_seeds, p.max_seeds + 1, size=m)
        seeds, n_seeds = pick_seeds(self.seed_index, kps, reached, k, seed_use, p.seed_scan_cap, rng, positions)
        seeds_full = np.full((m, p.max_seeds), -1, dtype=np.int64)
        seeds_full[:, : seeds.shape[1]] = seeds[:, : p.max_seeds]
        return kps, reached, seeds_full, n_seeds

    def _link_paths(self, kps: np.ndarray, reached: np.ndarray, seeds: np.ndarray, n_seeds: np.ndarray,
                    mode: np.ndarray, rng: np.random.Generator, seed_use: np.ndarray, walker: Walker,
                    rows: RowMass | None, commit: bool) -> np.ndarray:
        """Make every link path carry >= 2 seeds (consecutive ones share a path KP, as pick_seeds orders them):
        a link path with fewer is walked again (up to link_retries times; a walk's seed picks are given back when it
        is discarded); one still short then goes to a single-seed mode (link_fallback 'single_seed', by the shares
        of multi_grade and hard in mode_mix) or is dropped ('drop'). Rows are replaced in place; returns the rows
        to keep."""
        p = self.params
        keep = np.ones(len(mode), dtype=bool)
        short = np.flatnonzero((mode == LINK) & (n_seeds < 2))
        for _ in range(p.link_retries):
            if not len(short):
                break
            if commit:
                self.link_stats["retried"] += len(short)
            _give_back(seed_use, seeds[short])
            new_kps, new_reached, new_seeds, new_n = self._walks(len(short), rng, seed_use, walker, rows)
            good = np.flatnonzero(new_n >= 2)
            _give_back(seed_use, np.delete(new_seeds, good, axis=0))
            filled, rest = short[: len(good)], short[len(good):]
            kps[filled], reached[filled], seeds[filled], n_seeds[filled] = (
                new_kps[good], new_reached[good], new_seeds[good], new_n[good])
            # The unfilled rows keep their walk; their seeds were given back: pick them again for the next round.
            if len(rest):
                k = np.full(len(rest), p.min_seeds, dtype=np.int64)
                again, n_again = pick_seeds(self.seed_index, kps[rest], reached[rest], k, seed_use, p.seed_scan_cap,
                                            rng)
                seeds[rest] = -1
                seeds[rest, : again.shape[1]] = again[:, : seeds.shape[1]]
                n_seeds[rest] = n_again
            short = rest
        if len(short):
            if p.link_fallback == "drop":
                _give_back(seed_use, seeds[short])
                keep[short] = False
                if commit:
                    self.link_stats["dropped"] += len(short)
            else:
                single = np.array([MULTI_GRADE, HARD], dtype=np.int64)
                w = np.array([p.mode_mix.get("multi_grade", 0.0), p.mode_mix.get("hard", 0.0)], dtype=np.float64)
                w = w if w.sum() > 0 else np.ones(2)
                mode[short] = single[rng.choice(2, size=len(short), p=w / w.sum())]
                if commit:
                    self.link_stats["to_single_seed"] += len(short)
        return keep

    def _batch(self, want: int, rng: np.random.Generator, seed_use: np.ndarray, first_number: int,
               commit: bool = True) -> PathBatch:
        p = self.params
        s = self.scores()
        walker = self.walker(s)
        rows = None
        if walker.name != "value":  # the baselines' transition probabilities never change: normalise rows once
            sig = (walker.name, p.gamma)
            if self._static_rows is None or self._static_rows[0] != sig:
                self._static_rows = (sig, row_mass(self.graph, walker))
            rows = self._static_rows[1]
        if rows is None and self._rows_buffer is None:
            nnz = len(self.graph.indices)
            self._rows_buffer = RowMass(np.empty(nnz), np.empty(nnz), np.empty(self.graph.n_nodes, dtype=bool))
        kps, reached, seeds_full, n_seeds = self._walks(want, rng, seed_use, walker, rows)
        m = len(reached)
        names = list(p.mode_mix)
        w = np.array(list(p.mode_mix.values()), dtype=np.float64)
        mode_local = rng.choice(len(names), size=m, p=w / w.sum())
        mode = np.array([mode_value(x) for x in names], dtype=np.int64)[mode_local]
        keep = self._link_paths(kps, reached, seeds_full, n_seeds, mode, rng, seed_use, walker, rows, commit)
        if not keep.all():
            kps, reached, seeds_full, n_seeds, mode = kps[keep], reached[keep], seeds_full[keep], n_seeds[keep], mode[keep]
            m = len(reached)
        valid = kps >= 0
        safe = np.where(valid, kps, 0)
        scores = np.where(valid, s[safe], 0.0)
        disc = self._kp_disc[kps[:, 0]] if m else np.zeros(0, dtype=np.int64)
        grade_cls = self._kp_diff[kps[:, 0]] if m else np.zeros(0, dtype=np.int64)
        return PathBatch(
            graph_version=self.snapshot.version,
            walker=p.walker,
            kps=kps,
            n_kps=reached,
            seeds=seeds_full,
            n_seeds=n_seeds,
            scores=scores,
            discipline=disc,
            difficulty=np.where(grade_cls >= 0, grade_cls + 1, 0),
            mode=mode,
            number=first_number + np.arange(m, dtype=np.int64),
        )

    def _count(self, batch: PathBatch) -> None:
        """Advance the counters by an emitted batch (seed use was advanced while picking)."""
        c = self.counters
        flat = batch.kps[batch.kps >= 0]
        c.kp_cov += np.bincount(flat, minlength=len(c.kp_cov))  # a path never repeats a KP
        dc = np.bincount(batch.discipline[batch.discipline >= 0], minlength=len(self.snapshot.disciplines))
        for i in np.flatnonzero(dc):
            name = self.snapshot.disciplines[i]
            c.discipline_counts[name] = c.discipline_counts.get(name, 0) + int(dc[i])
        gc = np.bincount(batch.difficulty[batch.difficulty > 0] - 1, minlength=len(GRADE_KEYS))
        for i in np.flatnonzero(gc):
            g = GRADE_KEYS[i]
            c.difficulty_counts[g] = c.difficulty_counts.get(g, 0) + int(gc[i])
        c.paths_emitted += len(batch)

    # --- reporting -------------------------------------------------------------------------------------------

    def stats(self) -> dict:
        """Coverage and distribution vs target, JSON-ready."""
        c = self.counters
        snap = self.snapshot
        t_disc, t_diff = self.resolved_targets()
        r_disc, r_diff = self.realised_shares()
        return {
            "graph_version": snap.version,
            "walker": self.params.walker,
            "params": self.params.walk_params().model_dump(),  # all of them: enough to redraw these walks offline
            "paths_emitted": c.paths_emitted,
            "link_paths_short": dict(self.link_stats),
            "kps": snap.n_kps,
            "kps_covered": int((c.kp_cov > 0).sum()),
            "kp_coverage": float((c.kp_cov > 0).mean()) if snap.n_kps else 0.0,
            "seeds": snap.n_seeds,
            "seeds_used": int((c.seed_use > 0).sum()),
            "seed_coverage": float((c.seed_use > 0).mean()) if snap.n_seeds else 0.0,
            "discipline": {
                "target": {d: float(t) for d, t, p in zip(snap.disciplines, t_disc, self._disc_present) if p},
                "realised": {d: float(r) for d, r, p in zip(snap.disciplines, r_disc, self._disc_present) if p},
                "total_variation": total_variation(t_disc, r_disc) if r_disc.sum() else None,
            },
            "difficulty": {
                "target": {g: float(t) for g, t, p in zip(GRADE_KEYS, t_diff, self._diff_present) if p},
                "realised": {g: float(r) for g, r, p in zip(GRADE_KEYS, r_diff, self._diff_present) if p},
                "total_variation": total_variation(t_diff, r_diff) if r_diff.sum() else None,
            },
        }

    def target_distance(self) -> tuple[float, float]:
        """Total variation between target and realised shares (discipline, difficulty); 0 before any path."""
        t_disc, t_diff = self.resolved_targets()
        r_disc, r_diff = self.realised_shares()
        return (
            total_variation(t_disc, r_disc) if r_disc.sum() else 0.0,
            total_variation(t_diff, r_diff) if r_diff.sum() else 0.0,
        )


def _give_back(seed_use: np.ndarray, seeds: np.ndarray) -> None:
    """Undo the use counts of discarded seed picks (-1 = none)."""
    picked = seeds[seeds >= 0]
    if len(picked):
        np.subtract.at(seed_use, picked, 1)


def _concat(parts: list[PathBatch], version: int, walker: str, p: WalkParams) -> PathBatch:
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return PathBatch(version, walker, np.zeros((0, p.max_kps), np.int64), z, np.zeros((0, p.max_seeds), np.int64),
                         z, np.zeros((0, p.max_kps)), z, z, z, z)
    if len(parts) == 1:
        return parts[0]
    cat = np.concatenate
    return PathBatch(
        version, walker,
        cat([x.kps for x in parts]), cat([x.n_kps for x in parts]), cat([x.seeds for x in parts]),
        cat([x.n_seeds for x in parts]), cat([x.scores for x in parts]), cat([x.discipline for x in parts]),
        cat([x.difficulty for x in parts]), cat([x.mode for x in parts]), cat([x.number for x in parts]),
    )
