"""Link paths really link seeds: at least two, consecutive ones sharing a KP of the path; what the sampler does when
the graph cannot give that; `linksyn sample` on a graph built from the example seeds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from linksyn.common.modes import HARD, LINK, MULTI_GRADE, mode_name
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.sampler.config import WalkParams
from linksyn.sampler.sampler import Sampler
from linksyn.sampler.walk import UnwalkableGraph

from tests.sampler.sampler_graphs import build_snapshot

REPO = Path(__file__).resolve().parents[2]
LINKSYN = str(Path(sys.executable).with_name("linksyn"))


def assert_linked(batch, snap) -> None:
    """Every link path: >= 2 seeds, each consecutive pair sharing a KP of the path."""
    seed_kps = [set(snap.seed_kp_indices[snap.seed_kp_indptr[s]:snap.seed_kp_indptr[s + 1]].tolist())
                for s in range(snap.n_seeds)]
    for kps, seeds, mode in zip(batch.kp_lists(), batch.seed_lists(), batch.mode):
        if mode != LINK:
            continue
        assert len(seeds) >= 2, (kps, seeds)
        for a, b in zip(seeds, seeds[1:]):
            assert seed_kps[a] & seed_kps[b] & set(kps), (kps, seeds)


def test_link_paths_have_two_seeds_sharing_a_path_kp():
    # A hub-and-spoke graph: a few KPs shared by many seeds, many KP pairs of one seed only (short links).
    rows = [(f"shared{i}", ["force", "mass", f"topic{i % 4}"], "physics", 3) for i in range(12)]
    rows += [(f"lonely{i}", [f"rare{i}a", f"rare{i}b"], "history", 2) for i in range(30)]
    snap = build_snapshot(rows)
    s = Sampler(snap, WalkParams(mode_mix={"link": 1.0}, min_kps=2, max_kps=3))
    batch = s.draw(400)
    assert_linked(batch, snap)
    modes = {mode_name(int(m)) for m in batch.mode}
    # The lonely pairs cannot give 2 seeds: walked again, then moved to a single-seed mode, and counted.
    assert s.link_stats["retried"] > 0 and s.link_stats["to_single_seed"] > 0 and s.link_stats["dropped"] == 0
    assert modes == {"link", "multi_grade", "hard"}
    assert s.stats()["link_paths_short"] == s.link_stats
    n_link = int((batch.mode == LINK).sum())
    assert n_link + s.link_stats["to_single_seed"] == 400


def test_retries_keep_seed_use_honest():
    rows = [(f"s{i}", ["a", "b", "c"], "math", 2) for i in range(4)] + [("x", ["d", "e"], "math", 2)]
    snap = build_snapshot(rows)
    s = Sampler(snap, WalkParams(mode_mix={"link": 1.0}, min_seeds=2, max_seeds=2))
    batch = s.draw(300)
    assert_linked(batch, snap)
    used = np.bincount(batch.seeds[batch.seeds >= 0], minlength=snap.n_seeds)
    assert (used == s.counters.seed_use).all()  # discarded picks were given back


def test_graph_too_sparse_for_links():
    # Every KP pair comes from one seed: no walk can link two seeds.
    snap = build_snapshot([(f"s{i}", [f"k{i}a", f"k{i}b"], "math", 2) for i in range(20)])
    s = Sampler(snap, WalkParams(mode_mix={"link": 0.5, "hard": 0.5}, link_retries=2))
    batch = s.draw(50)
    assert not (batch.mode == LINK).any() and set(batch.mode.tolist()) <= {HARD, MULTI_GRADE}
    assert (batch.n_seeds == 1).all() and s.link_stats["to_single_seed"] > 0
    dropping = Sampler(snap, WalkParams(mode_mix={"link": 1.0}, link_fallback="drop", link_retries=1))
    with pytest.raises(UnwalkableGraph, match="too sparse"):
        dropping.draw(10)


def test_link_needs_two_seeds_in_config():
    with pytest.raises(ValueError, match="link path carries at least 2 seeds"):
        WalkParams(min_seeds=1, max_seeds=1)
    WalkParams(min_seeds=1, max_seeds=1, mode_mix={"hard": 1.0})


def test_sample_cli_on_a_graph_with_no_edges_is_a_clear_error(tmp_path):
    snap = build_snapshot([(f"s{i}", [f"only{i}"], "math", 2) for i in range(3)])
    SnapshotStore(str(tmp_path)).write(snap)
    r = subprocess.run([LINKSYN, "sample", "--graph", str(tmp_path), "-n", "5"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert "cannot walk graph version 1" in r.stderr and "no node can start a walk" in r.stderr, r.stderr


def test_sample_on_a_graph_built_from_the_example_seeds(tmp_path):
    """The quickstart's seeds through the LLM-free extractor and the graph, then `linksyn sample`."""
    cfg = tmp_path / "kp.yaml"
    cfg.write_text("extractor:\n  mode: keyphrase\n  keyphrase_tokens: static\n")
    out = tmp_path / "run"
    r = subprocess.run([LINKSYN, "run", "--seeds", str(REPO / "examples" / "seeds.jsonl"), "--out", str(out),
                        "--stages", "extractor,graph", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    totals = json.loads((out / "report.json").read_text())["stages"]["extractor"]["totals"]
    assert totals["annotated"] == 42 and totals["kps_kept"] >= 42  # the extractor's KP counts reach the report
    assert {"kps_dropped_choice_label", "kps_dropped_fragment", "kps_merged", "kps_ungrounded"} <= set(totals)
    r = subprocess.run([LINKSYN, "sample", "--graph", str(out / "graph"), "-n", "200"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    paths = [json.loads(line) for line in r.stdout.splitlines()]
    links = [p for p in paths if p["mode"] == "link"]
    assert len(paths) == 200 and len(links) >= 20, r.stderr
    for p in links:
        assert len(p["seeds"]) >= 2, p
        for a, b in zip(p["seeds"], p["seeds"][1:]):
            assert set(a["knowledge_points"]) & set(b["knowledge_points"]) & set(p["kps"]), p
    assert "link paths short of 2 seeds" in r.stderr
    # Chinese seeds link by whole Chinese words.
    zh = [p for p in links if any("\u4e00" <= ch <= "\u9fff" for k in p["kps"] for ch in k)]
    assert zh, [p["kps"] for p in links]
