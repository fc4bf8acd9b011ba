"""Meaning-aware embeddings for free-text clustering: fetched once per task, cached by text digest.

The clustering strategies are pure and synchronous (``clustering.Embedder``: ``embed(texts) ->
array``), while a semantic embedder is a network call. So the consensus agent, when a text
task's last candidate arrives, asks :meth:`TextEmbeddings.embedder_for` for the whole task's
answers in one batch (only the texts not cached yet), then hands the strategy a
:class:`CachedEmbedder` that reads the vectors back. Texts are keyed by a blake2b digest, so a
repeated answer ("Paris", from many tasks) is embedded once while it stays in the cache.

Thresholds belong to an embedding space, so every embedder declares its own
``default_threshold`` and ``name`` (the result's ``embedder`` field says which one clustered
it). When the embedder fails (an HTTP error, a timeout), the task is clustered with the
lexical default and says so: a slow embedder must not hold the task's result.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
from swarmstream.agents.models.failures import ProviderError

log = logging.getLogger(__name__)

CACHE_TEXTS = 20_000
"""Vectors kept (LRU): 20,000 x 1,536 float32 (OpenAI's small model) is ~120 MiB at most; one
task's answers need a handful, and the same short answers recur across tasks."""

API_THRESHOLD = 0.7
"""Default cut for an ``/v1/embeddings`` model (``SWARM_EMBEDDINGS_THRESHOLD`` overrides it). Measured
with all-MiniLM-L6-v2 (the model TEI and Ollama serve most often) on the answer sets of
``tests/agents/consensus/test_embeddings.py``: paraphrases of one fact 0.76-0.93 cosine, the same
frame with another fact ("the capital is Paris" / "... Lyon") 0.61, different facts 0.27-0.46.
0.7 sits between. OpenAI's models were not measured here (their scale runs higher: set the
override). The simulated fleet's space (paraphrases >= 0.95, other facts < 0.1) passes at 0.7 too."""

TRIES = 3
"""Fetches per decision: an answer that arrived while the batch was in flight is fetched in a
second batch; a third miss falls back to the lexical embedder."""

Fetch = Callable[[Sequence[str]], Awaitable[list[list[float]]]]


def text_digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class CachedEmbedder:
    """A ``clustering.Embedder`` over vectors already fetched; a text not fetched is a KeyError."""

    def __init__(self, vectors: dict[bytes, np.ndarray], *, name: str, default_threshold: float) -> None:
        self._vectors = vectors
        self.name = name
        self.default_threshold = default_threshold

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vectors[text_digest(t)] for t in texts]) if texts else np.zeros((0, 1))


class TextEmbeddings:
    """The semantic embedder of a worker: one ``/v1/embeddings`` model (``fetch``), a cache."""

    def __init__(self, fetch: Fetch, *, name: str, default_threshold: float = API_THRESHOLD,
                 cache_texts: int = CACHE_TEXTS) -> None:
        self._fetch = fetch
        self.name = name
        self.default_threshold = default_threshold
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._limit = cache_texts
        self.batches = 0
        """Requests made (a test counts them: one per task, none for cached texts)."""

    def missing(self, texts: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(t for t in texts if text_digest(t) not in self._cache))

    async def embedder_for(self, texts: Callable[[], list[str]]) -> CachedEmbedder | None:
        """A synchronous embedder holding a vector for every text ``texts()`` returns (called again
        after each fetch: the task may have gained an answer meanwhile); None when the fetch fails,
        and the caller clusters lexically."""
        for _ in range(TRIES):
            wanted = texts()
            todo = self.missing(wanted)
            if not todo:
                vectors = {d: self._cache[d] for d in map(text_digest, wanted)}
                for digest in vectors:
                    self._cache.move_to_end(digest)
                return CachedEmbedder(vectors, name=self.name, default_threshold=self.default_threshold)
            try:
                self.batches += 1
                fetched = await self._fetch(todo)
            except ProviderError as exc:
                log.warning("embeddings %s failed (%s): clustering lexically", self.name, exc)
                return None
            for text, vector in zip(todo, fetched, strict=True):
                self._cache[text_digest(text)] = np.asarray(vector, dtype=np.float32)
            while len(self._cache) > self._limit:
                self._cache.popitem(last=False)
        log.warning("embeddings %s: answers kept arriving during %d fetches: clustering lexically", self.name, TRIES)
        return None
