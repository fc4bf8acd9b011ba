"""Local embeddings and similarity clustering."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from swarmstream.agents.consensus.clustering import (
    DEFAULT_DIM,
    Embedder,
    HashedNgramEmbedder,
    cluster,
    embed,
    medoid,
    similarity_matrix,
)

# --------------------------------------------------------------------------- embed


@pytest.mark.parametrize("texts", [[], [""], ["   "], ["a"], ["ab"], ["東京"], ["😀😀😀"], ["x" * 5000]])
def test_embed_edge_cases_have_the_right_shape_and_unit_or_zero_rows(texts):
    vectors = embed(texts)
    assert vectors.shape == (len(texts), DEFAULT_DIM)
    assert vectors.dtype == np.float32
    norms = np.linalg.norm(vectors, axis=1)
    assert np.all(np.isclose(norms, 1.0, atol=1e-5) | (norms == 0.0))


def test_embed_ignores_case_spacing_and_unicode_form():
    a, b, c = embed(["Café au lait", "  CAFÉ   au\nLAIT ", "Cafe\u0301 au lait"])
    assert np.allclose(a, b) and np.allclose(a, c)


def test_embed_is_the_same_in_every_process():
    """The n-gram hash must not depend on Python's per-process string hash salt."""
    code = (
        "from swarmstream.agents.consensus.clustering import embed;"
        "v = embed(['the same text in every process', 'ünïcödé 東京']);"
        "print(v.nonzero()[1].tolist(), round(float(v.sum()), 4))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"ngram_range": (0, 3)}, {"ngram_range": (5, 3)}])
def test_hashed_embedder_validates_its_settings(kwargs):
    with pytest.raises(ValueError):
        HashedNgramEmbedder(**kwargs)


def test_hashed_embedder_is_an_embedder():
    assert isinstance(HashedNgramEmbedder(), Embedder)


@pytest.mark.parametrize(
    "same, different",
    [
        (("The capital of France is Paris.", "Paris is the capital of France."), "Berlin."),
        (
            ("Water boils at 100 degrees Celsius at sea level.", "At sea level, water boils at 100 degrees Celsius."),
            "It depends on the altitude; there is no single answer.",
        ),
        (("Tokio ist die Hauptstadt von Japan.", "Die Hauptstadt Japans ist Tokio."), "東京"),
    ],
)
def test_paraphrases_are_closer_than_different_answers(same, different):
    similarity = similarity_matrix(embed([*same, different]))
    threshold = HashedNgramEmbedder.default_threshold
    assert similarity[0, 1] >= threshold
    assert similarity[0, 2] < threshold and similarity[1, 2] < threshold


# --------------------------------------------------------------------------- cluster


@pytest.mark.parametrize(
    "vectors, threshold, expected",
    [
        # edge cases first
        (np.zeros((0, 3)), 0.6, []),
        ([[1.0, 0.0]], 0.6, [[0]]),
        ([[0.0, 0.0], [0.0, 0.0]], 0.6, [[0], [1]]),  # zero rows link to nothing
        # identical and orthogonal
        ([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]], 0.6, [[0, 1], [2]]),
        ([[1.0, 0.0], [0.0, 1.0], [0.0, 3.0]], 0.6, [[1, 2], [0]]),  # largest first
        ([[1.0, 0.0], [0.0, 1.0]], -1.0, [[0, 1]]),
        ([[1.0, 0.0], [1.0, 0.0]], 1.01, [[0], [1]]),
        # connected components chain: a~b, b~c, a and c are not similar
        ([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], 0.55, [[0, 1, 2]]),
        ([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], 0.7, [[0, 1], [2]]),
        # equal sizes: first index first
        ([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], 0.9, [[0, 2], [1, 3]]),
    ],
)
def test_cluster(vectors, threshold, expected):
    assert cluster(np.asarray(vectors, dtype=float), threshold) == expected


def test_cluster_of_a_long_chain_finds_one_component():
    # each vector is similar only to its neighbours: needs many propagation rounds
    angles = np.linspace(0.0, np.pi / 2, 40)
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assert cluster(vectors, threshold=0.999) == [list(range(40))]


def test_cluster_partitions_every_row_exactly_once():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 8))
    groups = cluster(vectors, threshold=0.5)
    assert sorted(i for group in groups for i in group) == list(range(200))
    sizes = [len(group) for group in groups]
    assert sizes == sorted(sizes, reverse=True)


def test_cluster_rejects_a_nan_threshold():
    with pytest.raises(ValueError):
        cluster(np.eye(2), float("nan"))


def test_cluster_groups_paraphrases_of_one_answer():
    texts = [
        "The sky looks blue because air molecules scatter short blue wavelengths of sunlight more than red ones.",
        "Rayleigh scattering: molecules in the air scatter blue light, which has a shorter wavelength, more strongly "
        "than red light, so the sky appears blue.",
        "Sunlight is scattered by the gas molecules of the atmosphere, and shorter (blue) wavelengths scatter the "
        "most, which is why we see a blue sky.",
        "The sky is blue because it reflects the colour of the oceans.",
    ]
    assert cluster(embed(texts), HashedNgramEmbedder.default_threshold) == [[0, 1, 2], [3]]


# --------------------------------------------------------------------------- medoid


@pytest.mark.parametrize(
    "members, expected",
    [
        ([2], 2),
        ([0, 1, 2], 1),  # the middle one is closest to both others
        ([2, 0], 2),  # equal sums go to the first member
        ([0, 2], 0),
    ],
)
def test_medoid(members, expected):
    similarity = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.8], [0.3, 0.8, 1.0]], dtype=np.float32)
    assert medoid(similarity, members) == expected
