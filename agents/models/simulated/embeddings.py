"""The simulated fleet's ``/v1/embeddings``: vectors that place paraphrases together and
different facts apart, from a small built-in vocabulary. No I/O, no model.

A real sentence-embedding model knows that "Paris is the capital" and "the capital city
is Paris" say one thing and "the capital is Lyon" another; the lexical embedder of
``agents/consensus/clustering.py`` does not. This one fakes the former well enough for
tests and demos:

1. text -> case-folded words; stop words dropped; each word mapped to its concept
   through :data:`SYNONYMS` ("penned", "wrote", "author" -> ``author``);
2. a concept that only frames an answer (:data:`FRAME`: "capital", "author", "answer")
   weighs :data:`FRAME_WEIGHT`, any other word (the fact itself: "paris", "lyon", "42")
   weighs 1, so two answers agree when their facts do, whatever frame they are worded in;
3. each concept is hashed (blake2b, stable across processes) to a signed bucket of a
   :data:`DIM`-dimensional vector, which is L2-normalised.

Measured on the table of ``tests/agents/consensus/test_embeddings.py``: paraphrases of one
fact score 0.95-1.0 cosine, the same frame with another fact 0.0-0.1, so the consensus side's
threshold for an API embedder (0.7, ``consensus/embeddings.API_THRESHOLD``, measured on a real
sentence model) separates them with room either side.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

import orjson

DIM = 256
"""Buckets: dozens of concepts per answer at most, so collisions between one task's answers stay rare."""

FRAME_WEIGHT = 0.2
"""How much a framing word counts against a fact word: enough that "the capital is Paris"
and "Paris" stay above the threshold (0.98), too little for a shared frame to join two facts."""

STOP_WORDS = frozenset(
    ["a", "an", "the", "is", "are", "was", "were", "be", "been", "it", "its", "it's", "this", "that", "of", "in", "on", "at", "to", "by", "for", "and", "or", "as", "with", "i", "think", "believe", "probably", "surely", "definitely", "well", "so", "which", "who", "what", "answer", "answers"]
)

SYNONYMS: dict[str, str] = {
    **dict.fromkeys(("wrote", "written", "writer", "penned", "authored", "author", "novelist"), "author"),
    **dict.fromkeys(("capital", "capitol", "seat"), "capital"),
    **dict.fromkeys(("city", "town"), "city"),
    **dict.fromkeys(("discovered", "found", "discoverer", "identified", "isolated"), "discovered"),
    **dict.fromkeys(("proposed", "formulated", "developed", "came", "theory"), "proposed"),
    **dict.fromkeys(("big", "large", "huge", "great"), "large"),
    **dict.fromkeys(("small", "little", "tiny"), "small"),
    **dict.fromkeys(("fast", "quick", "rapid", "speedy"), "fast"),
    **dict.fromkeys(("shakespeare", "bard"), "shakespeare"),
    **dict.fromkeys(("yes", "correct", "true", "right"), "yes"),
    **dict.fromkeys(("no", "incorrect", "false", "wrong"), "no"),
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}

FRAME = frozenset({"author", "capital", "city", "discovered", "proposed", "country", "name", "called", "known",
                   "named", "by", "first"})

_WORD_RE = re.compile(r"[\w']+")


def concepts(text: str) -> dict[str, float]:
    """Concept -> weight of one text (module docstring, steps 1-2)."""
    out: dict[str, float] = {}
    for word in _WORD_RE.findall(text.casefold()):
        word = word.removesuffix("'s")
        if word in STOP_WORDS:
            continue
        concept = SYNONYMS.get(word, word)
        out[concept] = FRAME_WEIGHT if concept in FRAME else 1.0
    return out


def _bucket(concept: str) -> tuple[int, float]:
    digest = hashlib.blake2b(concept.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    return value % DIM, 1.0 if value >> 63 else -1.0


def embed(text: str) -> list[float]:
    vector = [0.0] * DIM
    for concept, weight in concepts(text).items():
        index, sign = _bucket(concept)
        vector[index] += sign * weight
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector


def embeddings_body(model: str, texts: Sequence[str]) -> bytes:
    """An OpenAI ``/v1/embeddings`` response for ``texts``."""
    tokens = sum(max(1, len(t) // 4) for t in texts)
    return orjson.dumps({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(texts)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })


def read_input(body: object) -> list[str] | None:
    """The texts of an embeddings request (``input``: a string or a list of strings); None if malformed."""
    if not isinstance(body, dict):
        return None
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None
