"""Knowledge-point coverage over paths: the share of the graph's KPs that the first n paths of a walker contain.

The curves are drawn here, offline, on the graph snapshot (as `linksyn sample` draws: the sampler's own walkers),
for the value walker with the run's walk parameters and targets, and for the uniform walker (the MathScale-style
baseline), from the same random seed, each in one `draw` of all the paths as a bounded run's sampler draws them (its
batches, and the value function's updates between them, are the live sampler's). Coverage is counted after every
path in the order drawn. On the snapshot a run walked, with its seed and a run whose paths were drawn in one go
(`linksyn run` up to sampler.lag_target paths), the value curve ends on the run's own figure, shown beside it as a
point; otherwise the curves show what each walker does on this graph, not a trace of the run.

This is the one place the report uses a service's domain code (the sampler's walkers, which have no contract in
linksyn.common); without the sampler in the build the curves are left out, with a note.

Cost: a walker's draw of n paths (batches over the graph's CSR arrays), then O(n * max_kps) to count coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from linksyn.common.snapshots.graph import GraphSnapshot

WALKERS = ("value", "uniform")
POINTS = 40
"""Points per curve (the page stays small whatever the number of paths)."""


@dataclass
class CoverageCurves:
    n_kps: int
    lines: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    """Walker -> (paths drawn, share of KPs covered) in path order, starting at (0, 0)."""
    note: str = ""
    """Why a curve is missing, if one is."""


def coverage_curves(
    snap: GraphSnapshot,
    n_paths: int,
    params: Mapping[str, Any] | None = None,
    targets: tuple[Mapping[str, float], Mapping[str, float]] | None = None,
    rng_seed: int = 0,
    points: int = POINTS,
    walkers: tuple[str, ...] = WALKERS,
) -> CoverageCurves:
    """Coverage after each of `points` steps up to `n_paths` paths, per walker. `params`: walk parameters (fields of
    linksyn.sampler.config.WalkParams; others keep their defaults); `targets`: (discipline, difficulty) shares the
    value walker's gate aims at (None: the natural mix)."""
    curves = CoverageCurves(snap.n_kps)
    try:
        from linksyn.sampler.config import WalkParams
        from linksyn.sampler.sampler import Sampler
        from linksyn.sampler.targets import Targets
    except ModuleNotFoundError as e:
        curves.note = f"the sampler is not in this build ({e.name}): no coverage curves"
        return curves
    if n_paths < 1 or snap.n_kps == 0:
        curves.note = "no paths to draw" if n_paths < 1 else "the graph has no knowledge points"
        return curves
    known = set(WalkParams.model_fields)
    base = {k: v for k, v in (params or {}).items() if k in known and k != "walker"}
    goal = Targets(dict(targets[0]), dict(targets[1]), "natural") if targets else Targets(default="natural")
    steps = sorted({max(1, round(n_paths * k / points)) for k in range(1, points + 1)})
    problems = []
    for walker in walkers:
        try:
            sampler = Sampler(snap, WalkParams(**base, walker=walker), goal, rng_seed=rng_seed)
            covered = covered_after_each_path(sampler.draw(n_paths).kps, snap.n_kps)
        except ValueError as e:  # UnwalkableGraph, no walk of min_kps, targets selecting nothing
            problems.append(f"{walker} walker: {e}")
            continue
        curves.lines[walker] = [(0, 0.0)] + [(k, float(covered[k - 1]) / snap.n_kps) for k in steps]
    curves.note = "; ".join(problems)
    return curves


def covered_after_each_path(kps: np.ndarray, n_kps: int) -> np.ndarray:
    """KPs covered by the first i+1 paths, for each path i of `kps` ((paths, max_kps) KP ids, -1 padded)."""
    n, width = kps.shape
    flat = kps.ravel()
    valid = flat >= 0
    first = np.full(n_kps, -1, dtype=np.int64)
    positions = np.flatnonzero(valid)
    ids, where = np.unique(flat[valid], return_index=True)  # first occurrence of each KP, in path order
    first[ids] = positions[where] // width
    new_per_path = np.bincount(first[first >= 0], minlength=n)
    return np.cumsum(new_per_path)
