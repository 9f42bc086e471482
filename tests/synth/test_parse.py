import pytest

from linksyn.synth.parse import (
    ReplyError,
    first_json_object,
    parse_generated_qa,
    parse_rating,
    parse_refined_answer,
)


def test_first_object_tolerates_fences_and_prose():
    text = 'Sure! Here it is:\n```json\n{"question": "Q?", "answer": "A"}\n```\nand {"other": 1}'
    assert first_json_object(text) == {"question": "Q?", "answer": "A"}
    assert first_json_object('{bad json} then {"a": 1}') == {"a": 1}
    with pytest.raises(ReplyError, match="no JSON object"):
        first_json_object("[1, 2] no object")


def test_valid_reply():
    qa = parse_generated_qa('{"question": " Why? ", "answer": 7, "knowledge_points": ["a", " ", "b"], '
                            '"discipline": "physics", "difficulty": "4"}')
    assert (qa.question, qa.answer, qa.knowledge_points, qa.discipline, qa.difficulty) == ("Why?", "7", ["a", "b"], "physics", 4)
    assert qa.rationale == ""


@pytest.mark.parametrize(
    "reply,message",
    [
        ('{"answer": "A"}', "'question' is missing"),
        ('{"question": "Q", "answer": "  "}', "'answer' is empty"),
        ('{"question": ["Q"], "answer": "A"}', "'question' must be a string, got list"),
        ('{"question": "Q", "answer": "A", "difficulty": 9}', "integer 1..5, got 9"),
        ('{"question": "Q", "answer": "A", "knowledge_points": [1, 2]}', "list of strings"),
    ],
)
def test_invalid_replies_say_what_is_wrong(reply, message):
    with pytest.raises(ReplyError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_generated_qa(reply)


def test_rating_and_refinement():
    assert parse_rating('{"difficulty": 5}') == 5
    with pytest.raises(ReplyError):
        parse_rating('{"difficulty": "hard"}')
    r = parse_refined_answer('{"answer": "B", "rationale": "r"}')
    assert (r.answer, r.rationale) == ("B", "r")
