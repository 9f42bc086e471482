"""Target resolution and the probe-driven shift."""

from __future__ import annotations

import numpy as np
import pytest

from linksyn.sampler.targets import Deficit, resolve_shares, shift_targets, shift_toward
from linksyn.sampler.value import total_variation


def tv(a: dict, b: dict) -> float:
    keys = sorted(set(a) | set(b))
    return total_variation(np.array([a.get(k, 0) for k in keys]), np.array([b.get(k, 0) for k in keys]))


def test_probe_report_moves_targets_toward_weak_bucket_with_bounded_step():
    disc = {"math": 0.5, "physics": 0.3, "history": 0.2}
    diff = {"1": 0.25, "2": 0.25, "3": 0.25, "4": 0.25}
    deficits = [Deficit("history", 4, 0.3), Deficit("math", 1, -0.1), Deficit("physics", 2, 0.0)]
    new_disc, new_diff = shift_targets(disc, diff, deficits, step=0.1)
    assert new_disc["history"] > disc["history"] and new_disc["math"] < disc["math"]
    assert new_diff["4"] > diff["4"]
    assert tv(disc, new_disc) <= 0.1 + 1e-12 and tv(diff, new_diff) <= 0.1 + 1e-12
    assert sum(new_disc.values()) == pytest.approx(1.0)
    # Repeated reports converge to the weak bucket without ever jumping.
    d = disc
    for _ in range(100):
        nd, _ = shift_targets(d, diff, deficits, step=0.1)
        assert tv(d, nd) <= 0.1 + 1e-12
        d = nd
    assert d["history"] > 0.99


def test_no_deficit_no_change_and_unknown_classes_ignored():
    disc = {"math": 0.5, "physics": 0.5}
    assert shift_toward(disc, {}, 0.2) == disc
    new_disc, _ = shift_targets(disc, {"1": 1.0}, [Deficit("chemistry", 0, 1.0)], 0.2)
    assert new_disc == pytest.approx(disc)


def test_resolve_uniform_natural_and_explicit():
    classes = ["a", "b", "c"]
    present = np.array([True, True, False])
    natural = np.array([3.0, 1.0, 5.0])
    np.testing.assert_allclose(resolve_shares({}, classes, present, natural, "uniform"), [0.5, 0.5, 0])
    np.testing.assert_allclose(resolve_shares({}, classes, present, natural, "natural"), [0.75, 0.25, 0])
    np.testing.assert_allclose(resolve_shares({"a": 1, "b": 3, "c": 6}, classes, present, natural, "uniform"),
                               [0.25, 0.75, 0])
    with pytest.raises(ValueError, match="no weight"):
        resolve_shares({"c": 1.0}, classes, present, natural, "uniform")
