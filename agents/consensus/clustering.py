"""Group free-text answers that say the same thing: embeddings -> cosine similarity -> clusters.

Pure numpy, no download, no network. The default embedder is a hashed character n-gram
TF-IDF (``HashedNgramEmbedder``):

1. text -> NFKC, case-folded, whitespace collapsed, padded with one space each side
   (so word starts and ends form their own n-grams);
2. every character 3-, 4- and 5-gram that does not cross a word (no space inside it;
   scikit-learn's ``analyzer="char_wb"``) is hashed with a fixed 64-bit polynomial hash plus
   the splitmix64 finaliser into one of ``dim`` buckets (2**14 by default). The hash is
   computed with numpy over all positions at once and does not depend on Python's
   per-process ``hash`` salt, so embeddings are identical across processes and replays;
3. term frequency is sublinear (``1 + log(count)``), weighted by a smoothed IDF computed
   over the batch being clustered (``log((1 + n) / (1 + df)) + 1``, as scikit-learn's
   ``TfidfVectorizer``), so n-grams that every answer shares (the question echoed
   back) count less than the ones that tell answers apart;
4. rows are L2-normalised, so cosine similarity is one matrix product.

Word-bounded character n-grams are robust to inflection, typos and word order, but they
are lexical: "the capital is Paris" and "the capital is Lyon" look alike, and scripts
written without spaces (Chinese, Japanese) get few shared 3-5-grams between reordered
sentences.

Thresholds belong to an embedding space. Measured with this embedder on small answer
sets (one task's answers per batch): paraphrases scored 0.40-0.82 cosine, different
answers to the same question 0.00-0.20, so ``HashedNgramEmbedder.default_threshold``
is 0.35, and the consensus ``cluster`` strategy uses it. ``cluster()`` itself defaults
to 0.6, a cut-off that suits sentence-embedding models, whose paraphrases score higher. Plug a semantic embedder
(anything with ``embed(texts) -> array``, e.g. an OpenAI-compatible ``/v1/embeddings``
client) through the ``Embedder`` protocol when meaning matters more than wording.

``cluster`` links two answers when their cosine similarity is at least ``threshold`` and
returns the connected components of that graph, found by vectorised label propagation
(no Python loop over pairs). Components do not depend on the order of the answers,
which keeps replays reproducible.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

DEFAULT_DIM = 2**14
"""16,384 buckets: a 2,000-character answer has ~6,000 n-grams (~4,000 distinct), so
collisions stay rare between the few answers of one task, and a batch of 10 answers is
a 10 x 16,384 float32 matrix (640 KiB)."""

DEFAULT_NGRAM_RANGE = (3, 5)
MEDOID_TOLERANCE = 1e-5
DEFAULT_THRESHOLD = 0.6

_WHITESPACE = re.compile(r"\s+")
_HASH_BASE = np.uint64(1_000_003)  # odd multiplier of the polynomial hash (as CPython's old str hash)
_SPLITMIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_SPLITMIX_2 = np.uint64(0x94D049BB133111EB)
_SPACE = np.uint64(ord(" "))


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into one vector each: ``(len(texts), d)`` floats, any ``d``.

    Rows need not be normalised (``cluster`` normalises them). An implementation may
    call a remote model, e.g. an OpenAI-compatible ``/v1/embeddings`` endpoint; the
    consensus agent can also embed asynchronously itself and pass the array on.
    """

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _prepare(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " " + _WHITESPACE.sub(" ", folded).strip() + " "


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the polynomial hash over all 64 bits before ``% dim``."""
    h = h ^ (h >> np.uint64(30))
    h = h * _SPLITMIX_1
    h = h ^ (h >> np.uint64(27))
    h = h * _SPLITMIX_2
    mixed: np.ndarray = h ^ (h >> np.uint64(31))
    return mixed


def _ngram_buckets(text: str, ngram_range: tuple[int, int], dim: int) -> np.ndarray:
    """Bucket index of every character n-gram of ``text`` (one loop per n, not per n-gram)."""
    code_points = np.frombuffer(_prepare(text).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    # spaces_before[i] = number of spaces in code_points[:i]; an n-gram starting at i has
    # a space strictly inside it when spaces_before[i + n - 1] - spaces_before[i + 1] > 0.
    spaces_before = np.concatenate(([0], np.cumsum(code_points == _SPACE)))
    low, high = ngram_range
    buckets: list[np.ndarray] = []
    for n in range(low, high + 1):
        count = code_points.size - n + 1
        if count <= 0:
            break
        h = np.full(count, np.uint64(n), dtype=np.uint64)  # seed with n: a 3-gram never equals a 4-gram
        for offset in range(n):
            h = h * _HASH_BASE + code_points[offset : offset + count]
        inside_word = spaces_before[n - 1 : n - 1 + count] - spaces_before[1 : 1 + count] == 0
        h = h[inside_word]
        buckets.append(_mix(h) % np.uint64(dim))
    if not buckets:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(buckets).astype(np.int64)


class HashedNgramEmbedder:
    """Hashed character n-gram TF-IDF (module docstring). Deterministic, local, no download."""

    default_threshold = 0.35
    """Cosine at which two answers count as the same (calibration in the module docstring)."""

    def __init__(self, dim: int = DEFAULT_DIM, ngram_range: tuple[int, int] = DEFAULT_NGRAM_RANGE) -> None:
        low, high = ngram_range
        if dim < 1:
            raise ValueError(f"HashedNgramEmbedder: dim must be >= 1, got {dim}")
        if not 1 <= low <= high:
            raise ValueError(
                f"HashedNgramEmbedder: ngram_range must be (low, high) with 1 <= low <= high, got {ngram_range}"
            )
        self.dim = dim
        self.ngram_range = (low, high)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        n_texts = len(texts)
        if n_texts == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        # One bincount for the whole batch: row i owns buckets [i * dim, (i + 1) * dim).
        flat = [_ngram_buckets(text, self.ngram_range, self.dim) + i * self.dim for i, text in enumerate(texts)]
        counts = np.bincount(np.concatenate(flat), minlength=n_texts * self.dim).reshape(n_texts, self.dim)
        present = counts > 0
        tf = np.zeros(counts.shape, dtype=np.float32)
        tf[present] = 1.0 + np.log(counts[present].astype(np.float32))
        df = present.sum(axis=0)
        idf = (np.log((1.0 + n_texts) / (1.0 + df)) + 1.0).astype(np.float32)
        return normalise_rows(tf * idf)


_DEFAULT_EMBEDDER = HashedNgramEmbedder()


def embed(texts: Sequence[str]) -> np.ndarray:
    """Embed ``texts`` with the default ``HashedNgramEmbedder``: ``(n, 2**14)`` float32, unit rows."""
    return _DEFAULT_EMBEDDER.embed(texts)


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """L2-normalise each row; an all-zero row (no n-grams) stays zero."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return unit


def similarity_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity of every pair of rows, in one matrix product."""
    unit = normalise_rows(embeddings)
    similarity: np.ndarray = unit @ unit.T
    return similarity


def _components(adjacency: np.ndarray) -> np.ndarray:
    """Connected-component label of each node: the smallest node index it is linked to.

    Label propagation: every round, each node takes the smallest label among itself and
    its neighbours (a vectorised row minimum). At most ``n`` rounds, usually 1-2.
    """
    n = adjacency.shape[0]
    labels = np.arange(n)
    for _ in range(n):
        neighbour_min = np.where(adjacency, labels[np.newaxis, :], n).min(axis=1)
        updated = np.minimum(labels, neighbour_min)
        updated = updated[updated]  # pointer jumping: follow the label's own label
        if np.array_equal(updated, labels):
            break
        labels = updated
    return labels


def cluster(embeddings: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> list[list[int]]:
    """Indices of rows grouped by connected components of ``cosine >= threshold``.

    Clusters are ordered largest first (ties: smallest first index); indices inside a
    cluster are ascending. Every row is in exactly one cluster.
    """
    embeddings = np.asarray(embeddings)
    n = embeddings.shape[0] if embeddings.ndim else 0
    if n == 0:
        return []
    if not math.isfinite(threshold):
        raise ValueError(f"cluster: threshold must be a finite number, got {threshold}")
    adjacency = similarity_matrix(embeddings) >= threshold
    np.fill_diagonal(adjacency, True)
    labels = _components(adjacency)
    roots, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    order = sorted(range(len(roots)), key=lambda k: (-sizes[k], roots[k]))
    members = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    groups = [members[starts[k] : starts[k] + sizes[k]].tolist() for k in range(len(roots))]
    return [groups[k] for k in order]


def medoid(similarity: np.ndarray, members: Sequence[int]) -> int:
    """The member most similar to the rest of its cluster (highest summed similarity).

    Sums within ``MEDOID_TOLERANCE`` of the best count as equal and go to the first of
    ``members`` (float32 rounding makes "equal" sums differ in the 7th digit); callers
    order members to make that choice meaningful.
    """
    index = np.asarray(members, dtype=np.int64)
    block = similarity[np.ix_(index, index)]
    totals = block.sum(axis=1) - np.diagonal(block)  # self-similarity says nothing
    return int(index[int(np.flatnonzero(totals >= totals.max() - MEDOID_TOLERANCE)[0])])
