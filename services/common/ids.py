"""Deterministic record ids: the same content and lineage always give the same id, so replays can be dropped.

Also the key of `linksyn.synth-qa`, a contract between the synth (producer) and the sink (consumer): a SynthQA is
keyed by its normalised question, so every record of one question lands in one partition, where one sink replica
holds that partition's exact-duplicate state.
"""

from __future__ import annotations

import hashlib

from linksyn.common.text import normalise_text


def content_id(*parts: str | bytes | int) -> str:
    """sha256 over the parts (length-prefixed, so ("ab","c") != ("a","bc")), hex, first 32 characters."""
    h = hashlib.sha256()
    for p in parts:
        b = p if isinstance(p, bytes) else str(p).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:32]


def id64(hex_id: str) -> int:
    """A record id (hex, at least 16 characters) as a 64-bit int: its first 16 hex digits."""
    return int(hex_id[:16], 16)


def question_key_of_normalised(normalised: str) -> bytes:
    """`question_key` of a question already passed through `normalise_text`."""
    return content_id("question", normalised)[:16].encode("ascii")


def question_key(question: str) -> bytes:
    """The Kafka key of a SynthQA: 16 hex digits of a hash of the normalised question (`normalise_text`). Equal
    questions (up to case, Unicode form and whitespace) get equal keys, hence one partition."""
    return question_key_of_normalised(normalise_text(question))


def question_hash(question: str) -> int:
    """The normalised question as a 64-bit int (the exact-duplicate key): `question_key` read as hex."""
    return int(question_key(question), 16)
