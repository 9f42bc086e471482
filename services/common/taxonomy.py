"""The two-level discipline taxonomy: disciplines, their subdisciplines, and the labels seeds already carry.

A `Taxonomy` answers three questions for the extractor:
- which (discipline, subdiscipline, implied difficulty) a seed's own subject or source stands for
  (`label_for`), so a labelled seed need not be guessed at;
- which known discipline a free-text name means (`resolve_discipline`: an LLM may say "Math" or "maths");
- how to list the taxonomy in a prompt (`prompt_listing`) and in a JSON schema (`discipline_names`, ...).

The default taxonomy is `taxonomy.yaml` beside this module (its header documents the format and our level choices);
`load_taxonomy(path)` reads a replacement with the same format.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from linksyn.common.grades import GRADE_NAMES, GRADES, MAX_GRADE, MIN_GRADE, UNKNOWN, is_grade
from linksyn.common.yaml_file import read_yaml

DEFAULT_TAXONOMY_PATH = Path(__file__).with_name("taxonomy.yaml")

# Names an LLM gives that are this close (difflib ratio) to exactly one known name are taken to mean it.
_CLOSE_MATCH_CUTOFF = 0.8

_NON_ALNUM = re.compile(r"[^0-9a-z\u4e00-\u9fff]+")


class TaxonomyError(ValueError):
    """The taxonomy file is malformed; the message names the entry."""


def normalise_name(name: str) -> str:
    """Case- and punctuation-insensitive form of a name: 'Counting & Probability' -> 'counting probability'."""
    text = unicodedata.normalize("NFKC", name).lower()
    return _NON_ALNUM.sub(" ", text).strip()


def subject_key(subject: str) -> str:
    """The key a subject label is looked up by: 'Counting & Probability' -> 'counting_probability'."""
    return normalise_name(subject).replace(" ", "_")


@dataclass(frozen=True)
class Label:
    """What a seed's own label says: its place in the taxonomy and the difficulty it implies (0 = none)."""

    discipline: str
    subdiscipline: str
    difficulty: int = 0


class Taxonomy:
    """An immutable two-level taxonomy with subject/source label mappings. Build it with `from_mapping`."""

    def __init__(
        self,
        disciplines: Mapping[str, tuple[str, ...]],
        subjects: Mapping[str, Label],
        sources: Mapping[str, Label],
        levels_by_prefix: Mapping[str, int],
        aliases: Mapping[str, str],
        difficulty_names: Mapping[int, str],
        origin: str = "<taxonomy>",
        keywords: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.disciplines = dict(disciplines)
        self.subjects = dict(subjects)
        self.sources = dict(sources)
        self.levels_by_prefix = dict(levels_by_prefix)
        self.aliases = dict(aliases)
        self.difficulty_names = dict(difficulty_names)
        self.origin = origin
        self.keywords = dict(keywords or {})
        """Subdiscipline -> words that mark a question as belonging to it (the LLM-free Chinese classifier's)."""
        self._discipline_by_sub = {sub: d for d, subs in self.disciplines.items() for sub in subs}
        # Every normalised name that identifies a discipline (name, alias, subdiscipline, subject key).
        self._lookup: dict[str, str] = {}
        for key, d in (
            [(subject_key(s).replace("_", " "), lab.discipline) for s, lab in self.subjects.items()]
            + [(normalise_name(s), d) for s, d in self._discipline_by_sub.items()]
            + [(normalise_name(a), d) for a, d in self.aliases.items()]
            + [(normalise_name(d), d) for d in self.disciplines]
        ):
            self._lookup[key] = d  # later entries win: a discipline's own name beats everything

    # -- construction -------------------------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "<taxonomy>") -> "Taxonomy":
        """Validate and build from the YAML structure documented in taxonomy.yaml."""
        if not isinstance(data, Mapping):
            raise TaxonomyError(f"{origin}: the taxonomy must be a mapping, got {type(data).__name__}")
        raw_disc = data.get("disciplines")
        if not isinstance(raw_disc, Mapping) or not raw_disc:
            raise TaxonomyError(f"{origin}: 'disciplines' must be a non-empty mapping of discipline -> [subdisciplines]")
        disciplines: dict[str, tuple[str, ...]] = {}
        owner: dict[str, str] = {}
        for d, subs in raw_disc.items():
            d = str(d).strip()
            if not isinstance(subs, list) or not subs or not all(isinstance(s, str) and s.strip() for s in subs):
                raise TaxonomyError(f"{origin}: discipline {d!r} needs a non-empty list of subdiscipline names, got {subs!r}")
            for s in subs:
                if s in owner:
                    raise TaxonomyError(
                        f"{origin}: subdiscipline {s!r} appears under both {owner[s]!r} and {d!r} (names must be unique)"
                    )
                owner[s] = d
            disciplines[d] = tuple(s.strip() for s in subs)

        def label(entry: Any, where: str) -> Label:
            if isinstance(entry, list) and len(entry) == 2:
                disc, sub, level = entry[0], entry[1], 0
            elif isinstance(entry, Mapping) and {"discipline", "subdiscipline"} <= set(entry):
                disc, sub, level = entry["discipline"], entry["subdiscipline"], entry.get("difficulty", 0)
            else:
                raise TaxonomyError(
                    f"{origin}: {where} must be [discipline, subdiscipline] or "
                    f"{{discipline, subdiscipline, difficulty?}}, got {entry!r}"
                )
            if disc not in disciplines:
                raise TaxonomyError(f"{origin}: {where} names unknown discipline {disc!r}")
            if sub not in disciplines[disc]:
                raise TaxonomyError(
                    f"{origin}: {where} names subdiscipline {sub!r}, which is not one of {disc!r}'s: {list(disciplines[disc])}"
                )
            if not (is_grade(level) or level == UNKNOWN):
                raise TaxonomyError(
                    f"{origin}: {where} difficulty must be an integer {MIN_GRADE}-{MAX_GRADE} (or 0 for none), got {level!r}"
                )
            return Label(disc, sub, level)

        subjects = {subject_key(str(k)): label(v, f"subject {k!r}") for k, v in (data.get("subjects") or {}).items()}
        sources = {str(k).lower(): label(v, f"source {k!r}") for k, v in (data.get("sources") or {}).items()}
        levels = {}
        for prefix, level in (data.get("levels_by_prefix") or {}).items():
            if not is_grade(level):
                raise TaxonomyError(
                    f"{origin}: levels_by_prefix[{prefix!r}] must be an integer {MIN_GRADE}-{MAX_GRADE}, got {level!r}"
                )
            levels[str(prefix)] = level
        aliases = {}
        for alias, target in (data.get("aliases") or {}).items():
            if target not in disciplines:
                raise TaxonomyError(f"{origin}: alias {alias!r} points to unknown discipline {target!r}")
            aliases[str(alias)] = target
        keywords: dict[str, tuple[str, ...]] = {}
        for sub, words in (data.get("keywords") or {}).items():
            if sub not in owner:
                raise TaxonomyError(f"{origin}: keywords given for unknown subdiscipline {sub!r}")
            if not isinstance(words, list) or not all(isinstance(w, str) and len(w.strip()) >= 2 for w in words):
                raise TaxonomyError(f"{origin}: keywords of {sub!r} must be a list of words of 2+ characters, got {words!r}")
            keywords[sub] = tuple(dict.fromkeys(w.strip() for w in words))
        names = {int(k): str(v) for k, v in (data.get("difficulty") or {}).items()}
        if names and tuple(sorted(names)) != GRADES:
            raise TaxonomyError(f"{origin}: 'difficulty' must name the levels {GRADES}, got keys {sorted(names)}")
        return cls(disciplines, subjects, sources, levels, aliases, names or dict(GRADE_NAMES), origin, keywords)

    # -- lookups ------------------------------------------------------------------------------------------------

    def discipline_names(self) -> list[str]:
        return list(self.disciplines)

    def subdiscipline_names(self) -> list[str]:
        return list(self._discipline_by_sub)

    def discipline_of(self, subdiscipline: str) -> str | None:
        return self._discipline_by_sub.get(subdiscipline)

    def label_for(self, subject: str = "", source: str = "") -> Label | None:
        """The label a seed's subject (or, failing that, its source) maps to, with the implied difficulty."""
        if subject:
            key = subject_key(subject.rsplit(":", 1)[-1])  # tolerate 'mmlu:college_physics'
            lab = self.subjects.get(key)
            if lab is not None:
                if lab.difficulty == 0:
                    for prefix, level in self.levels_by_prefix.items():
                        if key.startswith(prefix):
                            return Label(lab.discipline, lab.subdiscipline, level)
                return lab
        if source:
            low = source.lower()
            for needle, lab in self.sources.items():
                if needle in low:
                    return lab
        return None

    def resolve_discipline(self, name: str) -> str | None:
        """The known discipline `name` means: itself, an alias, one of its subdisciplines or subjects, or the one
        known name within a small edit distance; None if nothing fits."""
        key = normalise_name(name)
        if not key:
            return None
        if key in self._lookup:
            return self._lookup[key]
        singular = key[:-1] if key.endswith("s") else key + "s"
        if singular in self._lookup:
            return self._lookup[singular]
        close = difflib.get_close_matches(key, list(self._lookup), n=1, cutoff=_CLOSE_MATCH_CUTOFF)
        return self._lookup[close[0]] if close else None

    def resolve_subdiscipline(self, name: str, discipline: str) -> str | None:
        """The subdiscipline of `discipline` that `name` means (exact after normalisation or close), else None."""
        subs = self.disciplines.get(discipline, ())
        by_norm = {normalise_name(s): s for s in subs}
        key = normalise_name(name)
        if key in by_norm:
            return by_norm[key]
        close = difflib.get_close_matches(key, list(by_norm), n=1, cutoff=_CLOSE_MATCH_CUTOFF)
        return by_norm[close[0]] if close else None

    def closest_names(self, name: str, n: int = 3) -> list[str]:
        """Known discipline names nearest to `name`, for error messages."""
        return difflib.get_close_matches(normalise_name(name), list(self.disciplines), n=n, cutoff=0.0)

    def prompt_listing(self) -> str:
        """One line per discipline: 'discipline: sub1; sub2; ...' (for the prompt)."""
        return "\n".join(f"- {d}: {'; '.join(subs)}" for d, subs in self.disciplines.items())

    def difficulty_listing(self) -> str:
        return "\n".join(f"{k} = {v}" for k, v in sorted(self.difficulty_names.items()))




def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read a taxonomy YAML file (the packaged default when `path` is None)."""
    p = Path(path) if path else DEFAULT_TAXONOMY_PATH
    return Taxonomy.from_mapping(read_yaml(p, "taxonomy file", TaxonomyError), origin=str(p))
