"""Intake agent: swarm.tasks -> swarm.model.<id>, bad input -> swarm.dead-letters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from swarmstream.agents.dispatch.intake import InvalidTask, plan_fanout
from swarmstream.agents.ports import Emit, InputMessage, dead_letter
from swarmstream.schemas.codec import DecodeError, decode_task


class Dispatcher:
    def __init__(
        self,
        *,
        emit: Emit,
        model_topic: Callable[[str], str],
        dead_letter_topic: str,
        known_models: Sequence[str],
        default_models: Sequence[str],
    ) -> None:
        self._emit = emit
        self._model_topic = model_topic
        self._dead_letters = dead_letter_topic
        self._known = frozenset(known_models)
        self._default = list(default_models)

    async def handle(self, message: InputMessage) -> None:
        try:
            task = decode_task(message.value, message.headers, key=message.key)
            requests = plan_fanout(task, known_models=self._known, default_models=self._default)
        except (DecodeError, InvalidTask) as exc:
            key = (message.key or b"").decode("utf-8", "replace")
            await self._emit(self._dead_letters, key, dead_letter(message, str(exc), exc))
            return
        await asyncio.gather(
            *(self._emit(self._model_topic(r.model_id), task.task_id, r) for r in requests)
        )
