import numpy as np
from linksyn.extractor.kp_canon import KPCanon


def test_exact_forms_merge_without_embedding():
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.eye(8, dtype=np.float32)[: len(texts)]

    canon = KPCanon(encode, threshold=0.9)
    out = canon.canonicalise([["Prime Numbers", "prime number"], ["PRIME NUMBERS", "Euler's formula"]])
    assert out == [["prime number"], ["prime number", "euler's formula"]]
    assert calls == [["prime number", "euler's formula"]]  # one batched call, each form once
    assert canon.canonicalise([["prime numbers"]]) == [["prime number"]] and len(calls) == 1


def test_near_synonyms_merge_with_minilm(embedder):
    canon = KPCanon(embedder.encode, threshold=0.92)
    first = canon.canonicalise([["Pythagorean theorem", "Newton's second law"]])
    later = canon.canonicalise([["Pythagoras theorem", "newton's first law", "replication of DNA"], ["DNA replication"]])
    assert first == [["pythagorean theorem", "newton's second law"]]
    assert later[0][0] == "pythagorean theorem"  # merged (cosine ~0.96)
    assert later[0][1] == "newton's first law"  # kept apart (cosine ~0.90 < 0.92)
    assert later[1] == ["replication of dna"]  # merged within one batch
    assert canon.merged == 2 and len(canon) == 4


def test_merging_off_uses_the_form_only():
    canon = KPCanon(None)
    assert canon.canonicalise([["Pythagoras theorem", "Pythagorean theorem"]]) == [["pythagoras theorem", "pythagorean theorem"]]


def _planted_vectors(n: int, dim: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Random unit vectors with planted near-duplicates (some within a batch, some across batches, some ties)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, dim))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    vecs = {f"kp {i}": base[i] for i in range(n)}
    for i in range(0, n, 3):  # a near-synonym of every third KP
        v = base[i] + rng.normal(scale=0.15, size=dim)
        vecs[f"near {i}"] = v / np.linalg.norm(v)
    vecs["copy 0"] = base[0].copy()  # an exact tie with "kp 0"
    return vecs


def test_batched_admission_equals_one_form_at_a_time(monkeypatch):
    import linksyn.extractor.kp_canon as kc

    vecs = _planted_vectors(60)

    def encode(texts):
        return np.stack([vecs[t] for t in texts]).astype(np.float32)

    names = list(vecs)
    order = np.random.default_rng(1).permutation(len(names))
    lists = [[names[j] for j in order[k : k + 7]] for k in range(0, len(order), 7)]
    monkeypatch.setattr(kc, "_VOCAB_BLOCK", 5)  # several vocabulary blocks
    monkeypatch.setattr(kc, "_ADMIT_CHUNK", 9)  # several chunks per call
    batched = KPCanon(encode, threshold=0.9)
    out_batched = batched.canonicalise(lists[:4]) + batched.canonicalise(lists[4:])
    single = KPCanon(encode, threshold=0.9)
    out_single = [single.canonicalise([[kp]])[0] for kps in lists for kp in kps]
    flat_batched = [kp for kps in out_batched for kp in kps]
    assert batched.vocabulary == single.vocabulary and batched.merged == single.merged > 0
    assert {k: batched._alias[k] for k in batched._alias} == single._alias
    assert len(flat_batched) <= len(out_single)  # duplicates within a list collapse
    assert single._alias["copy 0"] == single._alias["kp 0"]


def test_merging_stays_within_a_language_and_its_embedder():
    from linksyn.extractor.kp_canon import MergeSpace

    # Every text gets the same vector: an embedder that would merge anything with anything it is asked about.
    asked: dict[str, list[str]] = {"en": [], "multi": []}

    def same(name):
        def encode(texts):
            asked[name].extend(texts)
            return np.ones((len(texts), 4), dtype=np.float32) / 2.0
        return encode

    english_only = KPCanon([MergeSpace(same("en"), frozenset({"en"}), 0.9, "en")])
    out = english_only.canonicalise([["photosynthesis", "光合作用", "DNA复制"], ["respiration", "物体", "时间间隔"]])
    # English KPs merge (identical vectors); Chinese ones are never shown to the English embedder: form only.
    assert out == [["photosynthesis", "光合作用", "dna复制"], ["photosynthesis", "物体", "时间间隔"]]
    assert asked["en"] == ["photosynthesis", "respiration"] and english_only.merged_by_script == {"en": 1}
    assert [d.form for d in english_only.merge_sample] == ["respiration"]

    multilingual = KPCanon([MergeSpace(same("multi"), frozenset({"en", "zh"}), 0.9, "multi")])
    out = multilingual.canonicalise([["DNA replication", "DNA复制"], ["DNA的复制", "replication of DNA"]])
    # Within each script the embedder merges; across scripts never, whatever the similarity.
    assert out == [["dna replication", "dna复制"], ["dna复制", "dna replication"]]
    assert multilingual.merged_by_script == {"zh": 1, "en": 1}
