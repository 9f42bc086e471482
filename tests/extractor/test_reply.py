import json

import pytest

from linksyn.extractor.reply import (
    ReplyError, ReplyLimits, clean_kp, extraction_schema, first_json_object, parse_reply,
)

LIMITS = ReplyLimits(max_kps=8, max_kp_chars=40, max_kp_words=6)


def reply(**fields):
    base = {"knowledge_points": ["ohm's law"], "discipline": "physics", "subdiscipline": "electromagnetism",
            "difficulty": 3}
    base.update(fields)
    return json.dumps(base)


def test_first_json_object_tolerates_fences_and_prose():
    assert first_json_object('Sure! ```json\n{"a": 1}\n``` done') == {"a": 1}
    assert first_json_object('Here it is: {"a": {"b": 2}} and {"c": 3}') == {"a": {"b": 2}}
    assert first_json_object('{broken {"a": 1}') == {"a": 1}
    with pytest.raises(ReplyError, match="no JSON object: 'I cannot help'"):
        first_json_object("I cannot help")
    with pytest.raises(ReplyError, match="no JSON object"):
        first_json_object('{"knowledge_points": ["cut')  # truncated


def test_valid_reply(taxonomy):
    r = parse_reply(reply(rationale=" because "), taxonomy, LIMITS)
    assert (r.knowledge_points, r.discipline, r.subdiscipline, r.difficulty, r.rationale) == (
        ["ohm's law"], "physics", "electromagnetism", 3, "because")
    assert r.repairs == []


def test_kp_repairs_trim_dedupe_drop_empty_and_overlong(taxonomy):
    kps = ["  Ohm's  law ", "ohm's law", "", "- voltage.", "1. current", '"resistance"',
           "a knowledge point that is far far too long to keep here", 42]
    r = parse_reply(reply(knowledge_points=kps), taxonomy, LIMITS)
    assert r.knowledge_points == ["Ohm's law", "voltage", "current", "resistance", "42"]
    assert any("over-long" in x for x in r.repairs)


def test_kp_list_capped_and_string_split(taxonomy):
    # Room for 3 x max_kps: the extractor's validator drops junk (choice letters...) and keeps max_kps of the rest.
    r = parse_reply(reply(knowledge_points=[f"kp {i}" for i in range(30)]), taxonomy, LIMITS)
    assert len(r.knowledge_points) == 24 and any("first 24" in x for x in r.repairs)
    r = parse_reply(reply(knowledge_points="force; mass, acceleration"), taxonomy, LIMITS)
    assert r.knowledge_points == ["force", "mass", "acceleration"]


def test_no_usable_kp_is_an_error_naming_the_limit(taxonomy):
    with pytest.raises(ReplyError, match="over the limit of 40 chars"):
        parse_reply(reply(knowledge_points=["x" * 80]), taxonomy, LIMITS)
    with pytest.raises(ReplyError, match="no usable knowledge point among 2"):
        parse_reply(reply(knowledge_points=["", "  "]), taxonomy, LIMITS)
    with pytest.raises(ReplyError, match="no 'knowledge_points'"):
        parse_reply('{"discipline": "physics"}', taxonomy, LIMITS)
    with pytest.raises(ReplyError, match="must be a list"):
        parse_reply(reply(knowledge_points={"a": 1}), taxonomy, LIMITS)


def test_discipline_mapping_and_rejection(taxonomy):
    r = parse_reply(reply(discipline="Maths", subdiscipline="Number Theory"), taxonomy, LIMITS)
    assert (r.discipline, r.subdiscipline) == ("mathematics", "number theory")
    r = parse_reply(reply(discipline="", subdiscipline="organic chemistry"), taxonomy, LIMITS)
    assert r.discipline == "chemistry"
    r = parse_reply(reply(discipline="physics", subdiscipline="poetry"), taxonomy, LIMITS)
    assert r.subdiscipline == "" and any("'poetry' is not under 'physics'" in x for x in r.repairs)
    with pytest.raises(ReplyError, match=r"discipline 'astrology' is not in the taxonomy \(closest: "):
        parse_reply(reply(discipline="astrology", subdiscipline="x"), taxonomy, LIMITS)
    # Not needed (the seed carries a trusted label): an unknown discipline is no error.
    r = parse_reply(reply(discipline="astrology", subdiscipline="x"), taxonomy, LIMITS, need_discipline=False)
    assert r.discipline is None


def test_difficulty_clamped_or_rejected(taxonomy):
    assert parse_reply(reply(difficulty=7), taxonomy, LIMITS).difficulty == 5
    assert parse_reply(reply(difficulty=0), taxonomy, LIMITS).difficulty == 1
    assert parse_reply(reply(difficulty="4"), taxonomy, LIMITS).difficulty == 4
    assert parse_reply(reply(difficulty=2.6), taxonomy, LIMITS).difficulty == 3
    with pytest.raises(ReplyError, match="difficulty must be an integer 1-5, got 'hard'"):
        parse_reply(reply(difficulty="hard"), taxonomy, LIMITS)
    assert parse_reply(reply(difficulty="hard"), taxonomy, LIMITS, need_difficulty=False).difficulty is None


def test_schema_lists_the_taxonomy(taxonomy):
    s = extraction_schema(taxonomy, LIMITS)
    assert s["properties"]["discipline"]["enum"] == taxonomy.discipline_names()
    assert "number theory" in s["properties"]["subdiscipline"]["enum"]
    assert s["properties"]["knowledge_points"]["maxItems"] == 8
    assert s["properties"]["knowledge_points"]["items"]["maxLength"] == 40
    assert set(s["required"]) == {"knowledge_points", "discipline", "subdiscipline", "difficulty"}


def test_clean_kp():
    assert clean_kp('  * "Newton\'s   laws".  ') == "Newton's   laws".replace("   ", " ")


@pytest.mark.parametrize("raw", ["1e999", "NaN", "9" * 400, '"' + "9" * 400 + '"'])
def test_a_difficulty_that_is_no_finite_number_is_a_reply_error(raw: str, taxonomy):
    """Issue 21: inf, NaN and 400-digit numbers raised OverflowError/ValueError out of the batch."""
    text = '{"knowledge_points": ["limits"], "discipline": "mathematics", "difficulty": ' + raw + "}"
    try:
        parsed = parse_reply(text, taxonomy, LIMITS)
    except ReplyError as e:
        assert "difficulty" in str(e)
    else:
        assert parsed.difficulty == 5 and parsed.repairs  # a huge integer is clamped like any other
