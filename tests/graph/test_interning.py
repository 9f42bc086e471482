"""StringIndex: exact string -> id interning, against a plain dict, on both lookup paths and under forced collisions."""

from __future__ import annotations

import random

import numpy as np
import pytest

from linksyn.graph import interning
from linksyn.graph.interning import EncodedStrings, StringIndex, pack_strings
from linksyn.graph.snapshot import StringTable

ALPHABET = ["a", "b", "é", "日本", "🙂", "\0", "xyz", "0123456789abcdef", " "]


def random_batches(rng: random.Random, n_batches: int, sizes: list[int], max_parts: int = 6) -> list[list[str]]:
    return [
        ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, max_parts))) for _ in range(rng.choice(sizes))]
        for _ in range(n_batches)
    ]


def check_against_dict(batches: list[list[str]], index: StringIndex | None = None) -> StringIndex:
    """Intern the batches; every id must be what a dict numbering texts by first appearance gives."""
    index = index if index is not None else StringIndex(capacity=16)
    ref: dict[str, int] = {}
    for batch in batches:
        expected = [ref.setdefault(t, len(ref)) for t in batch]
        assert index.intern(batch).tolist() == expected
        assert len(index) == len(ref)
    assert index.to_list() == list(ref)
    assert all(index.get(t) == i for t, i in ref.items())
    assert index.get("never seen \u2603") is None
    return index


@pytest.fixture(params=["vectorised", "dict", "mixed"])
def path(request, monkeypatch):
    """Which lookup the index uses: the hash table (every batch), the dict (every batch), or both by batch size."""
    monkeypatch.setattr(interning, "SMALL", {"vectorised": 0, "dict": 10**9, "mixed": 8}[request.param])
    return request.param


def test_ids_are_dense_in_order_of_first_appearance(path):
    rng = random.Random(1)
    for _ in range(60):
        check_against_dict(random_batches(rng, rng.randint(1, 6), [0, 1, 3, 7, 8, 9, 40]))


def test_hash_collisions_keep_different_texts_apart(path, monkeypatch):
    # Degenerate hashes: every text collides with many others (constant) or with those of its length class; the
    # largest hash sits in the last table slot, so its probe runs wrap around to the start of the table.
    rng = random.Random(2)
    for weak in (
        lambda enc, starts, lengths: np.ones(len(starts), np.uint64),
        lambda enc, starts, lengths: np.full(len(starts), 2**64 - 1, np.uint64),
        lambda enc, starts, lengths: lengths.astype(np.uint64) % np.uint64(3) + np.uint64(1),
    ):
        monkeypatch.setattr(interning, "hash_strings", weak)
        for _ in range(40):
            index = check_against_dict(random_batches(rng, rng.randint(1, 5), [0, 2, 9, 30], max_parts=4))
            again = StringIndex.from_table(index.table())
            assert again.to_list() == index.to_list()


def test_long_unicode_and_nul_strings():
    texts = ["", "\0", "a\0", "\0a", "a" * 7, "a" * 8, "a" * 9, "a" * 16, "a" * 17, "日本語" * 50, "a" * 1000,
             "a" * 999 + "b", "b" + "a" * 999, "🙂" * 3, "e\u0301", "\u00e9"]
    index = check_against_dict([texts, texts[::-1], [t + "!" for t in texts]])
    assert index.get("e\u0301") != index.get("\u00e9")  # no normalisation: different code points, different KPs


def test_many_batches_grow_the_table(path):
    rng = random.Random(3)
    batches = [[f"s{rng.randint(0, 5000)}/{'x' * rng.randint(0, 20)}" for _ in range(rng.randint(1, 400))]
               for _ in range(150)]
    check_against_dict(batches)


def test_find_changes_nothing_and_stale_lookups_are_refused():
    index = StringIndex()
    index.intern(["a", "b"] * 600)
    found = index.find(["c", "a", "c", "d"] * 300)
    assert (len(index), found.n_new, found.new_texts) == (2, 2, ["c", "d"])
    assert found.ids[:4].tolist() == [2, 0, 2, 3]
    index.intern(["e"])
    with pytest.raises(ValueError, match="stale lookup"):
        index.add(found)


def test_select_looks_up_a_subset():
    index = StringIndex()
    items = ["x", "y", "z", "y"] * 400
    found = index.find(items, np.arange(1, len(items), 4))  # only the "y"s
    assert found.new_texts == ["y"] and set(found.ids.tolist()) == {0}


def test_from_table_round_trip_and_repeats():
    index = StringIndex()
    index.intern([f"kp {i} é" for i in range(3000)])
    again = StringIndex.from_table(index.table())
    assert again.to_list() == index.to_list()
    assert again.intern(["kp 7 é", "new"]).tolist() == [7, 3000]
    with pytest.raises(ValueError, match="'b' is repeated"):
        StringIndex.from_table(StringTable.from_list(["a", "b", "c", "b"]))


def test_encoding_matches_per_item_utf8():
    items = ["", "a", "日本", "\0x", "🙂🙂", "plain"]
    enc = EncodedStrings.of(items)
    assert [enc.text(i) for i in range(len(items))] == items
    assert enc.lengths.tolist() == [len(s.encode("utf-8")) for s in items]


@pytest.mark.parametrize("items", [[], ["only"], ["", "a", "", "日本\u00e9"], ["q\0with nul", "é", ""]])
def test_pack_strings_is_the_string_table_form(items):
    blob, lengths = pack_strings(items)
    assert blob.tobytes() == "".join(items).encode("utf-8")
    assert lengths.tolist() == [len(s.encode("utf-8")) for s in items]


@pytest.mark.parametrize("items", [["ascii", "", "x\0y"], ["", "\0", "\0\0"], ["日本", "", "a\0"]])
def test_encoding_paths_agree(items):
    enc = EncodedStrings.of(items)
    assert [enc.text(i) for i in range(len(items))] == items
    assert enc.buf[-8:].tolist() == [0] * 8  # room for a word read at the last start
