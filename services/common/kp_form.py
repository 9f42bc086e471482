"""The canonical form of a knowledge point: one string per concept, so the graph gets one node per concept and a
KP query finds what the extractor produced.

`canonical_form`: Unicode NFKC, lowercase, punctuation to spaces (keeping the characters that carry meaning inside
terms: apostrophes in "newton's law", hyphens in "acid-base", '+' and '#' in "c++"), collapsed spaces, and
rule-based singularisation of each English word (plural -> singular with an exception list; no NLP dependency).
The extractor writes KPs in this form; the graph's queries normalise a query text the same way.
"""

from __future__ import annotations

import re
import unicodedata

_DROP = re.compile(r"[^\w\s'+#\-\u4e00-\u9fff]")
_SPACE_HYPHEN = re.compile(r"\s*-\s*")
_WS = re.compile(r"\s+")

# Words ending in s that are not plurals, and irregular plurals.
_NOT_PLURAL = frozenset(
    """analysis axis basis bias chaos cosmos diagnosis emphasis gas genesis hypothesis lens mathematics physics
    economics econometrics ethics politics statistics genetics linguistics electronics thermodynamics mechanics
    dynamics kinematics optics acoustics logistics semantics phonetics aesthetics metaphysics athletics gymnastics
    news series species means crisis thesis synthesis osmosis mitosis meiosis photosynthesis homeostasis
    isosceles atlas iris pelvis virus status campus census corpus bonus focus fungus nucleus radius stimulus calculus
    apparatus sinus uterus plus minus versus thus this its his hers yours ours always perhaps whereas was has does
    is as us yes bus alias canvas texas paris arkansas kansas illinois christmas pythagoras archimedes socrates
    descartes hercules aristoteles euripides sophocles thucydides herodotus mars athens thomas james charles
    lucas marcus williams adams""".split()
)
_IRREGULAR = {
    "matrices": "matrix", "vertices": "vertex", "indices": "index", "appendices": "appendix", "children": "child",
    "women": "woman", "men": "man", "feet": "foot", "teeth": "tooth", "mice": "mouse", "geese": "goose",
    "criteria": "criterion", "phenomena": "phenomenon", "hypotheses": "hypothesis", "analyses": "analysis",
    "theses": "thesis", "bases": "base", "crises": "crisis", "diagnoses": "diagnosis", "syntheses": "synthesis",
    "axes": "axis", "nuclei": "nucleus", "radii": "radius", "foci": "focus", "fungi": "fungus", "stimuli": "stimulus",
    "bacteria": "bacterium", "media": "medium", "spectra": "spectrum", "quanta": "quantum", "maxima": "maximum",
    "minima": "minimum", "loci": "locus", "alumni": "alumnus", "genera": "genus", "data": "data", "people": "people",
    "leaves": "leaf", "halves": "half", "lives": "life", "wives": "wife", "knives": "knife", "shelves": "shelf",
    "wolves": "wolf", "selves": "self", "calves": "calf",
}


def singular(word: str) -> str:
    """Plural English noun -> singular by suffix rules; other words unchanged."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha() or word in _NOT_PLURAL or not word.endswith("s"):
        return word
    if word.endswith(("ss", "us", "is", "ics", "ous")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("oes") and len(word) > 4:
        return word[:-2]
    return word[:-1]


def canonical_form(kp: str) -> str:
    """Case, width, punctuation, whitespace and plural-insensitive form of a KP ('Newton's Laws!' -> "newton's law")."""
    text = unicodedata.normalize("NFKC", kp).lower().replace("\u2019", "'")
    text = _DROP.sub(" ", text)
    text = _SPACE_HYPHEN.sub("-", text).strip(" -'")
    words = [w.strip("'") if w.endswith("'") or w.startswith("'") else w for w in _WS.split(text)]
    return " ".join(singular(w) if "-" not in w else "-".join(singular(p) for p in w.split("-")) for w in words if w)
