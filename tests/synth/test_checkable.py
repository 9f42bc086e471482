import pytest

from linksyn.synth.checkable import CheckableAnswer, answers_agree, extract_checkable


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("He has 3 + 4 = 7 apples.\n#### 7", ("number", 7.0)),
        ("So the result is \\boxed{1,200}", ("number", 1200.0)),
        ("The answer is (C).", ("choice", "C")),
        ("B", ("choice", "B")),
        ("(D) 40 m/s", ("choice", "D")),
        ("B. Momentum only", ("choice", "B")),
        ("42 apples", ("number", 42.0)),
        ("3/4", ("number", 0.75)),
        ("The answer is 12.5", ("number", 12.5)),
    ],
)
def test_extracts_final_numbers_and_letters(answer, expected):
    got = extract_checkable(answer)
    assert got is not None and (got.kind, got.value) == expected


@pytest.mark.parametrize("answer", ["Carbon dioxide", "Because energy is conserved across the whole collision event",
                                    "Between 3 and 5 apples"])
def test_free_form_is_not_checkable(answer):
    assert extract_checkable(answer) is None


def test_agreement():
    seven = CheckableAnswer("number", 7.0)
    assert answers_agree(seven, extract_checkable("#### 7.0"))
    assert not answers_agree(seven, extract_checkable("#### 8"))
    assert not answers_agree(seven, extract_checkable("C"))
    assert not answers_agree(seven, None)
    assert answers_agree(CheckableAnswer("choice", "C"), extract_checkable("the answer is C"))
