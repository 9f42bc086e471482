import pytest
from linksyn.common.kp_form import canonical_form, singular


@pytest.mark.parametrize(
    "raw, canon",
    [
        ("Newton's Laws of Motion!", "newton's law of motion"),
        ("  Prime   Numbers ", "prime number"),
        ("Probabilities", "probability"),
        ("acid - base  reactions", "acid-base reaction"),
        ("Matrices", "matrix"),
        ("Physics", "physics"),
        ("analysis of variance", "analysis of variance"),
        ("boxes", "box"),
        ("C++ classes", "c++ class"),
        ("Newton\u2019s law", "newton's law"),
        ("\uff21\uff34\uff30 synthesis", "atp synthesis"),  # full-width letters
        ("...", ""),
    ],
)
def test_canonical_form(raw, canon):
    assert canonical_form(raw) == canon


def test_singular_keeps_non_plurals():
    for w in ["gas", "bias", "physics", "status", "glass", "series", "this"]:
        assert singular(w) == w
