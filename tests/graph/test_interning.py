"""StringIndex: exact string -> id interning (compiled kernels), against a plain dict, with honest hashes and with
collisions forced (hash_bits), and the encoding the kernels read."""

from __future__ import annotations

import random

import numpy as np
import pytest
from linksyn.common.snapshots.graph import StringTable
from linksyn.graph.interning import EncodedStrings, StringIndex, pack_strings

ALPHABET = ["a", "b", "é", "日本", "🙂", "\0", "xyz", "0123456789abcdef", " "]
HASH_BITS = [64, 40, 2, 0]
"""64: honest hashes. 40: 8 varying tag bits, so texts share tags while their slots differ. 2: four hashes, every
tag equal, home slots the table's last four. 0: one hash for every string, whose probe runs start in the table's
last slot and wrap around."""


def random_batches(rng: random.Random, n_batches: int, sizes: list[int], max_parts: int = 6) -> list[list[str]]:
    return [
        ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, max_parts))) for _ in range(rng.choice(sizes))]
        for _ in range(n_batches)
    ]


def check_against_dict(batches: list[list[str]], index: StringIndex) -> StringIndex:
    """Intern the batches; every id must be what a dict numbering texts by first appearance gives."""
    ref: dict[str, int] = {}
    for batch in batches:
        expected = [ref.setdefault(t, len(ref)) for t in batch]
        assert index.intern(batch).tolist() == expected
        assert len(index) == len(ref)
    assert index.to_list() == list(ref)
    assert all(index.get(t) == i for t, i in ref.items())
    assert index.get("never seen \u2603") is None
    return index


@pytest.fixture(params=HASH_BITS)
def hash_bits(request) -> int:
    return request.param


def test_ids_are_dense_in_order_of_first_appearance(hash_bits):
    rng = random.Random(1)
    for _ in range(60):
        check_against_dict(random_batches(rng, rng.randint(1, 6), [0, 1, 3, 7, 8, 9, 40]), StringIndex(16, hash_bits))


def test_forced_collisions_keep_different_texts_apart(hash_bits):
    # Many texts per hash (or per tag): every id still comes from a bytewise comparison, and a table rebuilt from
    # the texts (a restored snapshot) finds them all again.
    rng = random.Random(2)
    for _ in range(30):
        index = check_against_dict(random_batches(rng, rng.randint(1, 5), [0, 2, 9, 30], max_parts=4),
                                   StringIndex(16, hash_bits))
        again = StringIndex.from_table(index.table(), hash_bits=hash_bits)
        assert again.to_list() == index.to_list()
        assert again.find(index.to_list()).ids.tolist() == list(range(len(index)))


def test_repeats_within_a_batch_of_new_and_known_texts(hash_bits):
    index = StringIndex(16, hash_bits)
    index.intern(["k1", "k2"])
    batch = ["n1", "k2", "n1", "n2", "k1", "n2", "n1", "k2", "n3"] * 50
    found = index.find(batch)
    assert found.ids[:9].tolist() == [2, 1, 2, 3, 0, 3, 2, 1, 4]
    assert found.ids.tolist() == found.ids[:9].tolist() * 50
    assert (found.new.tolist(), found.new_texts) == ([0, 3, 8], ["n1", "n2", "n3"])
    assert len(index) == 2  # find changed nothing
    index.add(found)
    assert index.to_list() == ["k1", "k2", "n1", "n2", "n3"]


def test_long_unicode_and_nul_strings(hash_bits):
    texts = ["", "\0", "a\0", "\0a", "a" * 7, "a" * 8, "a" * 9, "a" * 16, "a" * 17, "日本語" * 50, "a" * 1000,
             "a" * 999 + "b", "b" + "a" * 999, "a" * 500 + "b" + "a" * 499, "🙂" * 3, "e\u0301", "\u00e9"]
    index = check_against_dict([texts, texts[::-1], [t + "!" for t in texts], ["x" + t for t in texts]],
                               StringIndex(16, hash_bits))
    assert index.get("e\u0301") != index.get("\u00e9")  # no normalisation: different code points, different KPs


def test_ascii_batches_with_and_without_nul(hash_bits):
    # ASCII batches take the joined encoding unless a string holds a NUL; both give the same ids.
    base = [f"kp {i % 37}" for i in range(300)]
    with_nul = base[:150] + ["kp\x003", "kp 3"] + base[150:]
    check_against_dict([base, with_nul, base[::-1]], StringIndex(16, hash_bits))


def test_many_batches_grow_the_table(hash_bits):
    rng = random.Random(3)
    n_batches = 150 if hash_bits > 32 else 25  # a shared tag makes each lookup compare every text: keep it small
    batches = [[f"s{rng.randint(0, 5000)}/{'x' * rng.randint(0, 20)}" for _ in range(rng.randint(1, 400))]
               for _ in range(n_batches)]
    check_against_dict(batches, StringIndex(16, hash_bits))


def test_random_texts_against_a_dict_in_large_batches():
    rng = np.random.default_rng(4)
    vocab = [f"knowledge point {i}" + "é" * (i % 3 == 0) for i in range(20_000)]
    batches = [[vocab[int(i)] for i in rng.zipf(1.2, int(rng.integers(1, 30_000))) % len(vocab)] for _ in range(12)]
    check_against_dict(batches, StringIndex())


def test_skip_empty_gives_minus_one_and_adds_nothing():
    index = StringIndex()
    found = index.find(["", "math", "", "law", "math"], skip_empty=True)
    assert found.ids.tolist() == [-1, 0, -1, 1, 0]
    assert found.empty.tolist() == [0, 2]
    index.add(found)
    assert index.to_list() == ["math", "law"] and index.get("") is None
    assert index.find(["", "x"]).ids.tolist() == [2, 3]  # without it, "" is a text like any other


def test_find_changes_nothing_and_stale_lookups_are_refused():
    index = StringIndex()
    index.intern(["a", "b"] * 600)
    found = index.find(["c", "a", "c", "d"] * 300)
    assert (len(index), found.n_new, found.new_texts) == (2, 2, ["c", "d"])
    assert found.ids[:4].tolist() == [2, 0, 2, 3]
    index.intern(["e"])
    with pytest.raises(ValueError, match="stale lookup: made when the index had 2 strings, it has 3"):
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
    with pytest.raises(ValueError, match=r"string 'b' is repeated \(positions 1 and 3\)"):
        StringIndex.from_table(StringTable.from_list(["a", "b", "c", "b"]))


def test_bad_hash_bits_are_refused():
    with pytest.raises(ValueError, match="hash_bits must be 0..64, got 65"):
        StringIndex(hash_bits=65)


def test_encoding_matches_per_item_utf8():
    items = ["", "a", "日本", "\0x", "🙂🙂", "plain"]
    enc = EncodedStrings.of(items)
    assert [enc.text(i) for i in range(len(items))] == items
    assert enc.lengths.tolist() == [len(s.encode("utf-8")) for s in items]


@pytest.mark.parametrize("items", [[], [""], ["", ""], ["only"], ["a", "", "bc", "", ""], ["x" * 20, "y"]])
def test_joined_ascii_encoding_finds_every_string(items):
    enc = EncodedStrings.of(items)
    assert [enc.text(i) for i in range(len(items))] == items
    assert enc.starts.tolist() == [sum(len(t) + 1 for t in items[:i]) for i in range(len(items))]
    assert not enc.buf.flags.writeable and enc.buf[-8:].tolist() == [0] * 8


@pytest.mark.parametrize("items", [[], ["only"], ["", "a", "", "日本\u00e9"], ["q\0with nul", "é", ""]])
def test_pack_strings_is_the_string_table_form(items):
    blob, lengths = pack_strings(items)
    assert blob.tobytes() == "".join(items).encode("utf-8")
    assert lengths.tolist() == [len(s.encode("utf-8")) for s in items]


@pytest.mark.parametrize("items", [["ascii", "", "x\0y"], ["", "\0", "\0\0"], ["日本", "", "a\0"], ["\0"]])
def test_encoding_paths_agree(items):
    enc = EncodedStrings.of(items)
    assert [enc.text(i) for i in range(len(items))] == items
    assert enc.buf[-8:].tolist() == [0] * 8  # room for a word read at the last start
