"""The knowledge value function and the distribution gate (DESIGN.md, "Knowledge value function"). Pure numpy.

V(v) = pop(v)^alpha * (1 + cov(v))^-beta
D(v) = prod over controlled attributes a of g_a(class_a(v)), with, for one attribute,
       g(c) = (target(c) / q(c)) * (target(c) / max(eps, realised(c)))^eta

- realised(c) is the share of class c among the emitted paths (a path's class is its start KP's class), so the
  start draw, proportional to V*D, sets the mix directly;
- q(c) is the share of class c in the start mass V alone: the feed-forward factor target/q makes the start draw
  hit the target in expectation at once, whatever V's class masses are (without it the gate is proportional
  control and settles at (q * target^eta)^(1/(1+eta)), far off when q is skewed, as real seed sets are);
- the DESIGN.md factor (target/max(eps, realised))^eta is the feedback on top: it corrects what the feed-forward
  cannot see (walks that get stuck before min_kps and are redrawn, sampling noise) and has zero steady-state
  error because the feed-forward already centres the mix on the target. It is clipped to [1/gate_max, gate_max].

With two attributes (discipline, difficulty) the per-class factors are found jointly by iterative proportional
fitting (`rake`) on the start mass per (discipline, difficulty) cell, so both marginals are met at once; for one
attribute that is exactly the formula above. A KP whose class of an attribute is unknown (discipline -1,
difficulty 0) gets factor 1 for that attribute: the gate only steers what it can name.
"""

from __future__ import annotations

import numpy as np


def knowledge_value(pop: np.ndarray, cov: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """V = pop^alpha * (1 + cov)^-beta, float64. pop is clipped at 1 so alpha < 0 stays finite for a KP without
    seeds (a snapshot should not hold one anyway)."""
    p = np.maximum(np.asarray(pop, dtype=np.float64), 1.0)
    c = np.asarray(cov, dtype=np.float64)
    return p**alpha * (1.0 + c) ** (-beta)


def class_gate(target: np.ndarray, realised: np.ndarray, eps: float, eta: float) -> np.ndarray:
    """Per-class factor (target / max(eps, realised))^eta. Both are shares over the same classes."""
    t = np.asarray(target, dtype=np.float64)
    r = np.maximum(np.asarray(realised, dtype=np.float64), eps)
    return (t / r) ** eta


def feedback_targets(target: np.ndarray, realised: np.ndarray, eps: float, eta: float, clip: float) -> np.ndarray:
    """The start mix to aim the next batch at: target * clip((target / max(eps, realised))^eta, 1/clip, clip),
    normalised. Before any path is counted (realised all 0) it is the target itself."""
    t = np.asarray(target, dtype=np.float64)
    r = np.asarray(realised, dtype=np.float64)
    if eta == 0 or not r.sum() > 0:
        return t
    f = np.clip(class_gate(t, r, eps, eta), 1.0 / clip, clip)
    aim = t * f
    s = aim.sum()
    return aim / s if s > 0 else t


def rake(
    mass: np.ndarray, row_target: np.ndarray, col_target: np.ndarray, iters: int = 200, tol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray]:
    """Iterative proportional fitting. mass: (R+1, C+1) non-negative start mass per (row class, column class),
    the last row / column holding the mass of an unknown class. Returns factors a (R,), b (C,) such that
    mass * a[i] * b[j] (unknown factor 1) has known-row shares row_target and known-column shares col_target
    (each share taken over the mass whose class of that attribute is known). A class with target 0 gets 0; a
    target that no mass can meet (a class without mass, or incompatible marginals) is approached as closely as
    IPF gets in `iters` sweeps."""
    m0 = np.asarray(mass, dtype=np.float64)
    R, C = m0.shape[0] - 1, m0.shape[1] - 1
    rt = np.asarray(row_target, dtype=np.float64)
    ct = np.asarray(col_target, dtype=np.float64)
    a = np.ones(R + 1)
    b = np.ones(C + 1)
    a[:R] = rt > 0
    b[:C] = ct > 0
    rt = rt / rt.sum() if R and rt.sum() > 0 else rt
    ct = ct / ct.sum() if C and ct.sum() > 0 else ct

    def fit(marg: np.ndarray, target: np.ndarray) -> np.ndarray:
        tot = marg.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(marg > 0, target * tot / marg, 0.0) if tot > 0 else np.ones_like(marg)

    for _ in range(iters):
        if R:
            a[:R] *= fit((m0 * b[None, :]).sum(axis=1)[:R] * a[:R], rt)
        if C:
            b[:C] *= fit((m0 * a[:, None]).sum(axis=0)[:C] * b[:C], ct)
        if not R:
            break
        rows = (m0 * a[:, None] * b[None, :]).sum(axis=1)[:R]
        if not rows.sum() > 0 or np.abs(rows / rows.sum() - rt).max() < tol:
            break
    return a[:R], b[:C]


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts -> shares (all zeros stay zeros)."""
    c = np.asarray(counts, dtype=np.float64)
    s = c.sum()
    return c / s if s > 0 else np.zeros_like(c)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance 0.5 * sum |p - q| between two distributions over the same classes."""
    return 0.5 * float(np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).sum())


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 = perfectly even, -> 1 = concentrated on one item)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)
