import os
from pathlib import Path

import pytest
from linksyn.common.taxonomy import Taxonomy, TaxonomyError, load_taxonomy, subject_key

SHARED = Path(os.environ.get("LINKSYN_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))


def _subjects(path: Path) -> list[str]:
    ns: dict = {}
    exec(path.read_text(), ns)  # the datasets' own categories.py: plain dicts
    return list(ns["subcategories"])


@pytest.mark.parametrize("rel", ["seeds/mmlu/categories.py", "eval/cmmlu/src/categories.py"])
def test_every_mmlu_and_cmmlu_subject_maps(taxonomy, rel):
    path = SHARED / rel
    if not path.is_file():
        pytest.skip(f"{path} is absent (shared data not available)")
    subjects = _subjects(path)
    assert len(subjects) in (57, 67)
    missing = [s for s in subjects if taxonomy.label_for(s) is None]
    assert missing == []


def test_prefix_levels_and_overrides(taxonomy):
    assert taxonomy.label_for("elementary_mathematics").difficulty == 2
    assert taxonomy.label_for("high_school_physics").difficulty == 3
    assert taxonomy.label_for("college_medicine").difficulty == 4
    assert taxonomy.label_for("professional_law").difficulty == 5
    assert taxonomy.label_for("elementary_chinese").difficulty == 1  # explicit entry beats the prefix
    assert taxonomy.label_for("anatomy").difficulty == 0  # no prefix: nothing implied
    lab = taxonomy.label_for("Counting & Probability")
    assert (lab.discipline, lab.subdiscipline) == ("mathematics", "combinatorics and probability")
    assert taxonomy.label_for("", source="gsm8k/train.jsonl:7").discipline == "mathematics"
    assert taxonomy.label_for("no_such_subject") is None


def test_resolve_discipline_names(taxonomy):
    assert taxonomy.resolve_discipline("Mathematics") == "mathematics"
    assert taxonomy.resolve_discipline("maths") == "mathematics"
    assert taxonomy.resolve_discipline("Computer Sciences") == "computer science"
    assert taxonomy.resolve_discipline("biolgy") == "biology"
    assert taxonomy.resolve_discipline("organic chemistry") == "chemistry"  # a subdiscipline names its parent
    assert taxonomy.resolve_discipline("astrology and tarot") is None
    assert taxonomy.resolve_discipline("") is None


def test_subject_key():
    assert subject_key("Counting & Probability") == "counting_probability"
    assert subject_key("college_physics") == "college_physics"


def test_replacement_taxonomy_from_yaml(tmp_path):
    p = tmp_path / "tax.yaml"
    p.write_text("disciplines:\n  science: [physics, chemistry]\n  arts: [music]\nsubjects:\n  college_physics: [science, physics]\n"
                 "levels_by_prefix: {college_: 4}\n")
    t = load_taxonomy(p)
    assert t.discipline_names() == ["science", "arts"]
    assert t.label_for("college_physics").difficulty == 4
    assert t.resolve_discipline("music") == "arts"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"disciplines": {}}, "non-empty mapping"),
        ({"disciplines": {"a": ["x"], "b": ["x"]}}, "appears under both 'a' and 'b'"),
        ({"disciplines": {"a": ["x"]}, "subjects": {"s": ["b", "x"]}}, "unknown discipline 'b'"),
        ({"disciplines": {"a": ["x"]}, "subjects": {"s": ["a", "y"]}}, "subdiscipline 'y'"),
        ({"disciplines": {"a": ["x"]}, "aliases": {"z": "q"}}, "alias 'z' points to unknown discipline 'q'"),
        ({"disciplines": {"a": ["x"]}, "levels_by_prefix": {"college_": 9}}, "must be an integer 1-5"),
        ({"disciplines": {"a": ["x"]}, "keywords": {"y": ["力学"]}}, "keywords given for unknown subdiscipline 'y'"),
        ({"disciplines": {"a": ["x"]}, "keywords": {"x": ["力"]}}, "words of 2\\+ characters"),
    ],
)
def test_bad_taxonomy_is_rejected_with_the_entry(data, message):
    with pytest.raises(TaxonomyError, match=message):
        Taxonomy.from_mapping(data)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(TaxonomyError, match="does not exist"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_every_subdiscipline_has_keywords(taxonomy):
    """The LLM-free classifier of Chinese seeds reads these: a subdiscipline without any could never be predicted."""
    assert set(taxonomy.keywords) == set(taxonomy.subdiscipline_names())
    assert all(len(words) >= 1 for words in taxonomy.keywords.values())
