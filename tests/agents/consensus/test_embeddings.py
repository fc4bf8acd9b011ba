"""Clustering by meaning: the /v1/embeddings embedder over the simulated fleet's HTTP route."""

from __future__ import annotations

import pytest
from swarmstream.agents.consensus.embeddings import TextEmbeddings
from swarmstream.agents.consensus.strategies import aggregate
from swarmstream.agents.consensus.votes import Vote
from swarmstream.agents.models.catalog import ModelSpec, SimProfile
from swarmstream.agents.models.embeddings import HttpEmbeddings
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.models.simulated.fleet import SimFleet

CASES = [
    # (case, answers, how many clusters, the answers the largest cluster holds)
    ("paraphrases of one fact", ["Paris", "The capital is Paris.", "It's Paris", "paris, the capital city"], 1, 4),
    ("paris and lyon", ["The capital is Paris", "The capital is Lyon", "Paris"], 2, 2),
    ("same frame, three facts", ["It was written by Tolstoy", "Dickens wrote it", "The author is Austen"], 3, 1),
    ("authors paraphrased", ["Shakespeare wrote it", "It was penned by Shakespeare", "The author: Shakespeare",
                             "Marlowe"], 2, 3),
    ("numbers in words and digits", ["forty two", "42", "The answer is 42", "seven"], 3, 2),
]


@pytest.fixture
async def embeddings():
    fleet = SimFleet({"sim-embed": SimProfile()}, seed=1)
    url = await fleet.start()
    pool = ClientPool()
    spec = ModelSpec(id="sim-embed", provider="simulated", family="e", endpoint=url, capabilities=["embeddings"])
    try:
        yield TextEmbeddings(HttpEmbeddings(spec, pool).embed, name="sim-embed")
    finally:
        await pool.aclose()
        await fleet.stop()


@pytest.mark.parametrize(("answers", "clusters", "largest"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_paraphrases_group_and_different_facts_do_not(embeddings: TextEmbeddings, answers: list[str],
                                                             clusters: int, largest: int) -> None:
    embedder = await embeddings.embedder_for(lambda: answers)
    votes = [Vote(model_id=f"m{i}", answer=a) for i, a in enumerate(answers)]

    decision = aggregate(votes, answer_type="text", strategy="cluster", options={"embedder": embedder})

    assert decision.clusters == clusters
    assert len(decision.support) == largest


async def test_the_lexical_embedder_joins_paris_and_lyon_which_the_semantic_one_parts() -> None:
    votes = [Vote(model_id="a", answer="The capital is Paris"), Vote(model_id="b", answer="The capital is Lyon")]
    assert aggregate(votes, answer_type="text", strategy="cluster").clusters == 1  # why this module exists


async def test_a_task_is_one_batch_and_cached_texts_are_not_fetched_again(embeddings: TextEmbeddings) -> None:
    await embeddings.embedder_for(lambda: ["Paris", "Lyon", "Paris"])
    await embeddings.embedder_for(lambda: ["Paris", "Lyon"])
    await embeddings.embedder_for(lambda: ["Paris", "Nice"])

    assert embeddings.batches == 2
    assert embeddings.missing(["Paris", "Nice", "Lille"]) == ["Lille"]
