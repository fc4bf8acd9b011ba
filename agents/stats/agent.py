"""Stats agent: swarm.responses + swarm.failures -> the model stats table."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from swarmstream.agents.ports import InputMessage
from swarmstream.agents.stats.model_stats import stats_key, update
from swarmstream.schemas.codec import DecodeError, codec
from swarmstream.schemas.models import Failure, ModelResponse


class StatsRecorder:
    """Undecodable outcomes are skipped here: the consensus agent dead-letters them."""

    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self._table = table

    async def handle(self, message: InputMessage) -> None:
        try:
            outcome = codec().decode(message.value or b"")
        except DecodeError:
            return
        if not isinstance(outcome, (ModelResponse, Failure)):
            return
        for category in {None, outcome.step.category}:
            key = stats_key(outcome.step.model_id, category, message.partition)
            self._table[key] = update(self._table.get(key), outcome)
