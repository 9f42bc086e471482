import numpy as np
import pytest

from linksyn.extractor.difficulty import DifficultyModel, is_held_out, load_difficulty_model, surface_features
from linksyn.extractor.keyphrase import (
    KeyphraseExtractor, KeyphraseParams, candidates, heuristic_difficulty, is_mostly_cjk, mmr, mmr_batch,
)
from tests.extractor.conftest import make_seed


def test_candidates_are_content_word_runs_with_spans():
    text = "What is the angular magnification of a refracting telescope?\nA. 4"
    cands = {c.phrase: c.spans for c in candidates(text, 3, 64)}
    assert "angular magnification" in cands and "refracting telescope" in cands
    assert "what" not in cands and "the" not in cands
    assert not any(p.endswith(" a") or p == "a" for p in cands)  # choice letters are no candidates
    s, e = cands["refracting telescope"][0]
    assert text[s:e] == "refracting telescope"
    assert "magnification refracting" not in cands  # runs never span a stopword


def test_candidates_name_latex_operators_and_read_text_inside_math():
    text = r"Compute $\frac{a}{b}$ where \sqrt{x} is the integer sequence, 12 apples, $\text{kinetic energy} = \int f$"
    cands = {c.phrase: c.spans for c in candidates(text, 2, 64)}
    assert "frac" not in cands and "sqrt" not in cands  # command names are never phrases...
    assert {"fraction", "square root", "integral"} <= set(cands)  # ...but the concepts they name are
    s, e = cands["fraction"][0]
    assert text[s:e] == r"\frac"
    assert "integer sequence" in cands and "apples" in cands
    assert "kinetic energy" in cands  # prose inside \text{} inside math


def test_candidates_of_chinese_text_are_whole_words():
    text = "下列关于光合作用的说法正确的是\n光合作用发生在叶绿体中"
    cands = {c.phrase: c.spans for c in candidates(text, 3, 64)}
    assert "光合作用" in cands and len(cands["光合作用"]) == 2 and "叶绿体" in cands
    assert not any("的" in p or "下列" in p or "正确" in p for p in cands)  # function words are never candidates
    assert "合作用发" not in cands and "作用发生" not in cands  # no n-gram across a word boundary
    assert is_mostly_cjk(text) and not is_mostly_cjk("The photosynthesis (光合作用) question")


@pytest.mark.parametrize(("text", "whole", "cut"), [
    ("狭义相对论基本假设是什么？", {"狭义相对论", "基本假设"}, {"论基本假", "相对论基"}),
    ("第二次世界大战爆发于哪一年？", {"第二次世界大战"}, {"次世界大", "二次世界"}),
    # CMMLU writes common characters as Kangxi radicals (⼈ U+2F08 for 人): folded before cutting.
    ("某⼈先向东⾛2m，接着向⻄⾛6m，最后向南⾛3m，则他的位移的⼤⼩是", {"位移"}, {"⼈先"}),
])
def test_chinese_candidates_never_cut_a_word(text, whole, cut):
    cands = {c.phrase for c in candidates(text, 3, 64)}
    assert whole <= cands and not cands & cut, cands


def test_mmr_prefers_diverse_phrases():
    doc = np.array([1.0, 0.0, 0.0])
    cands = np.array([[0.99, 0.14, 0.0], [0.98, 0.2, 0.0], [0.7, 0.0, 0.71]])
    cands /= np.linalg.norm(cands, axis=1, keepdims=True)
    assert mmr(doc, cands, 2, diversity=0.0) == [0, 1]
    assert mmr(doc, cands, 2, diversity=0.7) == [0, 2]


def test_mmr_batch_equals_mmr_row_by_row():
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(6, 8))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    counts = np.array([5, 1, 7, 3, 7, 2])
    cands = rng.normal(size=(6, 7, 8))
    cands /= np.linalg.norm(cands, axis=2, keepdims=True)
    picked = mmr_batch(docs, cands, counts, top_n=4, diversity=0.5)
    for b in range(6):
        assert [j for j in picked[b] if j >= 0] == mmr(docs[b], cands[b, : counts[b]], 4, 0.5)


def test_heuristic_difficulty_orders_simple_below_advanced():
    simple = "Tom has 3 apples. He gets 2 more. How many apples does he have?"
    advanced = (r"Evaluate the improper integral \int_0^\infty e^{-x^2} dx using the theorem on Gaussian "
                "integrals and characterise the asymptotic behaviour of the corresponding distribution.")
    assert heuristic_difficulty(simple) <= 2 < heuristic_difficulty(advanced)


def test_keyphrase_extractor_on_fixture_seeds(embedder, taxonomy, fixture_seeds):
    kx = KeyphraseExtractor(embedder, taxonomy, trust_seed_labels=True)
    outs = kx.annotate(fixture_seeds)
    assert all(o.annotation is not None for o in outs), [o.error for o in outs]
    by_q = {s.question[:20]: o.annotation for s, o in zip(fixture_seeds, outs)}
    telescope = by_q["A refracting telesco"]
    assert 1 <= len(telescope.kps) <= 5 and any("magnification" in k or "telescope" in k for k in telescope.kps)
    assert (telescope.discipline, telescope.difficulty) == ("physics", 4)  # trusted label: college_ -> 4
    assert by_q["What is the value of"].difficulty == 2  # MATH level on the seed
    assert by_q["Natalia sold clips t"].discipline == "mathematics"  # GSM8K source label
    assert all(a.annotator == "keyphrase@v3/contextual" for a in by_q.values())


def test_nearest_centroid_discipline_without_labels(embedder, taxonomy, fixture_seeds):
    kx = KeyphraseExtractor(embedder, taxonomy, trust_seed_labels=False)
    outs = kx.annotate(fixture_seeds)
    got = {s.subject: o.annotation.discipline for s, o in zip(fixture_seeds, outs)}
    assert got["high_school_biology"] == "biology"
    assert got["college_computer_science"] == "computer science"
    assert got["high_school_microeconomics"] == "economics"


@pytest.mark.parametrize("tokens", ["contextual", "static"])
def test_batch_results_equal_one_at_a_time(embedder, taxonomy, fixture_seeds, tokens):
    seeds = fixture_seeds + [make_seed("下列关于光合作用的说法正确的是", "光合作用发生在叶绿体中"),
                             make_seed(r"Find $\sqrt{\frac{16}{9}}$.", r"$\boxed{\frac43}$", "Prealgebra", 2)]
    kx = KeyphraseExtractor(embedder, taxonomy, KeyphraseParams(tokens=tokens, batch_size=64, encoder_batch_size=4),
                            trust_seed_labels=False)
    together = kx.annotate(seeds)
    alone = [kx.annotate([s])[0] for s in seeds]
    for s, a, b in zip(seeds, together, alone):
        assert a.annotation is not None and b.annotation is not None, s.question
        assert (a.annotation.kps, a.annotation.discipline, a.annotation.difficulty) == (
            b.annotation.kps, b.annotation.discipline, b.annotation.difficulty), s.question


@pytest.mark.parametrize("tokens", ["contextual", "static"])
def test_latex_only_math_seed_gets_kps(embedder, taxonomy, tokens):
    kx = KeyphraseExtractor(embedder, taxonomy, KeyphraseParams(tokens=tokens), trust_seed_labels=False)
    named, bare, unlabelled = kx.annotate([
        make_seed(r"Simplify $\dfrac{\sqrt{50}}{\sin 30^\circ}$.", r"$\boxed{10\sqrt{2}}$", "Precalculus", 3),
        make_seed(r"What is $101^{3} - 3 \cdot 101^{2} + 3 \cdot 101 - 1$?", r"$\boxed{1000000}$", "Algebra", 1),
        make_seed(r"$2 + 2 = ?$", r"$4$"),
    ])
    assert named.annotation is not None and {"fraction", "square root", "sine"} <= set(named.annotation.kps)
    assert bare.annotation is not None and bare.annotation.kps == ["algebra"]  # the subject's subdiscipline
    assert unlabelled.annotation is None and not unlabelled.retryable and "no subject label" in unlabelled.error


def test_chinese_seed_gets_kps(embedder, taxonomy):
    kx = KeyphraseExtractor(embedder, taxonomy)
    [out] = kx.annotate([make_seed("下列关于光合作用的说法正确的是？", "光合作用发生在叶绿体中，光合作用产生氧气")])
    assert out.annotation is not None, out.error
    assert out.annotation.kps[0] == "光合作用" and "叶绿体" in out.annotation.kps
    assert "合作用发" not in out.annotation.kps  # overlapping n-grams of a picked phrase are skipped


def test_seed_without_readable_words_or_subject_fails_permanently(embedder, taxonomy):
    kx = KeyphraseExtractor(embedder, taxonomy)
    [out] = kx.annotate([make_seed("??? 12 + 7 !!!", "19")])
    assert out.annotation is None and not out.retryable and "no keyphrase candidates" in out.error


def _constant_model(level: int, dim: int = 384) -> DifficultyModel:
    classes = (1, 2, 3, 4, 5)
    bias = np.array([5.0 if c == level else 0.0 for c in classes], dtype=np.float32)
    return DifficultyModel(np.zeros((5, dim + 4), np.float32), bias, np.zeros(dim + 4, np.float32),
                           np.ones(dim + 4, np.float32), classes, {})


def test_difficulty_model_predicts_and_labels_take_precedence(embedder, taxonomy, fixture_seeds):
    untrusted = KeyphraseExtractor(embedder, taxonomy, trust_seed_labels=False, difficulty=_constant_model(5))
    trusted = KeyphraseExtractor(embedder, taxonomy, trust_seed_labels=True, difficulty=_constant_model(5))
    assert {o.annotation.difficulty for o in untrusted.annotate(fixture_seeds)} == {5}
    by_subject = {s.subject: o.annotation.difficulty for s, o in zip(fixture_seeds, trusted.annotate(fixture_seeds))}
    assert by_subject["college_physics"] == 4 and by_subject["Counting & Probability"] == 2


def test_difficulty_model_linear_decision_and_json_round_trip():
    w = np.zeros((2, 6), np.float32)
    w[1, 0] = 1.0  # class 4 wins when the first vector component is positive
    model = DifficultyModel(w, np.zeros(2, np.float32), np.zeros(6, np.float32), np.ones(6, np.float32), (2, 4), {})
    docs = np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32)
    assert model.predict(docs, ["q", "q"], ["a", "a"]) == [4, 2]
    again = DifficultyModel.from_json(model.to_json())
    assert again.predict(docs, ["q", "q"], ["a", "a"]) == [4, 2]
    with pytest.raises(ValueError, match="expects 6 features"):
        model.predict(np.zeros((1, 3), np.float32), ["q"], ["a"])


def test_surface_features_and_held_out_split():
    f = surface_features([r"$\frac{1}{2}$", "Who?"], ["1", "Washington"])
    assert f[0, 2] > 0.3 and f[1, 2] == 0 and f[0, 3] > 0
    held = [is_held_out(f"seed-{i}") for i in range(2000)]
    assert 0.15 < sum(held) / len(held) < 0.25 and held == [is_held_out(f"seed-{i}") for i in range(2000)]


@pytest.mark.parametrize("tokens", ["contextual", "static"])
def test_packaged_difficulty_models_are_small_and_documented(tokens):
    model = load_difficulty_model(tokens)
    assert model is not None, f"difficulty_{tokens}.json missing: run scripts/fit_difficulty.py"
    assert model.weights.shape == (len(model.classes), 388) and set(model.classes) <= {1, 2, 3, 4, 5}
    assert model.info["held_out_exact"] > model.info["held_out_majority_exact"]
