"""Wiring of the judge phase and the meaning-aware embedder (``agents/consensus/judge_phase.py``,
``agents/consensus/embeddings.py``) from the settings, the catalog, the chains and the breakers."""

from __future__ import annotations

import os

from swarmstream.agents.consensus.embeddings import TextEmbeddings
from swarmstream.agents.consensus.judge_phase import Judging
from swarmstream.agents.fallback.board import CircuitBoard
from swarmstream.agents.fallback.chains import ChainsConfig
from swarmstream.agents.models.catalog import Catalog
from swarmstream.agents.models.embeddings import EMBEDDINGS_CAPABILITY, HttpEmbeddings
from swarmstream.agents.models.http import ClientPool
from swarmstream.agents.selection.budget import estimate_cost_micros
from swarmstream.streams.app.settings import Settings

CHARS_PER_TOKEN = 3
"""The judge's forecast counts a token per 3 characters (the chars/4 heuristic under-counts code and
non-English text, and a forecast must be an upper bound: agents/selection/budget.py)."""


def judging_for(settings: Settings, catalog: Catalog, chains: ChainsConfig, board: CircuitBoard) -> Judging:
    """A judge name is a chain (its links in order) or a model (itself)."""

    def links(name: str) -> list[str]:
        chain = chains.chains.get(name)
        return [link.model for link in chain.links] if chain is not None else [name]

    def forecast(model: str, prompt_chars: int, max_tokens: int) -> int:
        spec = catalog.models.get(model)
        return 0 if spec is None else estimate_cost_micros(spec, -(-prompt_chars // CHARS_PER_TOKEN), max_tokens)

    return Judging(links=links, default_judge=settings.judge, forecast_micros=forecast,
                   admits=lambda model: model in catalog.models and board.admit(model).allowed,
                   split_below=settings.judge_split_below)


def embeddings_for(settings: Settings, catalog: Catalog, pool: ClientPool) -> TextEmbeddings | None:
    """The worker's meaning-aware embedder: a catalog model over ``/v1/embeddings``, or a local one."""
    threshold = {} if settings.embeddings_threshold is None else {"default_threshold": settings.embeddings_threshold}
    if settings.embeddings_local is not None:
        from swarmstream.agents.consensus.local_embedder import (
            FastembedEmbedder,  # the optional extra [embed]
        )

        local = FastembedEmbedder(settings.embeddings_local)
        return TextEmbeddings(local.embed, name=local.name, **threshold)
    if settings.embeddings_model is None:
        return None
    spec = catalog.models.get(settings.embeddings_model)
    if spec is None or EMBEDDINGS_CAPABILITY not in spec.capabilities:
        known = sorted(m.id for m in catalog.models.values() if EMBEDDINGS_CAPABILITY in m.capabilities)
        raise ValueError(f"SWARM_EMBEDDINGS_MODEL={settings.embeddings_model!r}: not a catalog model with the "
                         f"{EMBEDDINGS_CAPABILITY!r} capability (those: {known})")
    key = os.environ.get(spec.api_key_env) if spec.api_key_env and spec.provider != "simulated" else None
    client = HttpEmbeddings(spec, pool, api_key=key)
    return TextEmbeddings(client.embed, name=spec.id, **threshold)
