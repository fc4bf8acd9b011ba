"""Selector agent: swarm.select (keyed by tenant) -> one model, within the tenant's budget.

Select-mode tasks are re-keyed by tenant at intake, so each tenant's spend has
one writer (the owner of its partition) and concurrent tasks cannot overspend:
the spend is reserved here, synchronously, before any await. The reservation
is the forecast with the task's ``max_tokens`` as the answer length, an upper
bound, so actual spend never exceeds a budget (it may stay below it; the
result carries the actual cost). Every choice is logged as a SelectionEvent
with each candidate's propensity, for counterfactual replay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import numpy as np
from swarmstream.agents.models.catalog import ModelSpec
from swarmstream.agents.ports import DeadLetters, Emit, InputMessage
from swarmstream.agents.selection import budget
from swarmstream.agents.selection.decision import decide
from swarmstream.agents.selection.features import extract_features
from swarmstream.agents.selection.policies import Candidate, SelectionError
from swarmstream.agents.stats.book import ModelBook
from swarmstream.schemas.models import (
    Failure,
    ModelRequest,
    ScoredCandidate,
    SelectionEvent,
    StepContext,
    TaskRequest,
    now_ms,
)


def input_bound(estimated_tokens: int) -> int:
    """An upper bound on the input tokens a provider will bill for this prompt: the
    estimate is ~4 chars/token, real tokenizers and chat framing add up to ~30% and a
    few tokens per message; reserving the bound keeps actual spend under a budget."""
    return estimated_tokens * 3 // 2 + 16


class Selector:
    def __init__(
        self,
        *,
        models: Mapping[str, ModelSpec],
        book: ModelBook,
        spend: MutableMapping[str, Any],
        limits: Callable[[str], budget.BudgetLimits],
        emit: Emit,
        model_topic: Callable[[str], str],
        failures_topic: str,
        selections_topic: str,
        dead_letter_topic: str,
        policy: str,
        seed: int | None = None,
    ) -> None:
        self._models = dict(models)
        self._book = book
        self._spend = spend
        self._limits = limits
        self._emit = emit
        self._model_topic = model_topic
        self._failures = failures_topic
        self._selections = selections_topic
        self._dead = DeadLetters(emit, dead_letter_topic)
        self._policy = policy
        self._rng = np.random.default_rng(seed)

    def candidates(self, task: TaskRequest) -> tuple[str, list[Candidate]]:
        features = extract_features(task.prompt + (task.system or ""), task.answer_type, task.category)
        out = []
        for model_id, spec in self._models.items():
            stats = self._book.get(model_id, features.category)
            out.append(Candidate(
                model_id=model_id,
                quality=stats.quality,
                latency_ms=stats.latency_ewma_ms,
                cost_micros_est=budget.estimate_cost_micros(spec, input_bound(features.input_tokens), task.max_tokens),
                calls=stats.quality_events,
            ))
        return features.category, out

    async def handle(self, message: InputMessage) -> None:
        task = await self._dead.decode(message, TaskRequest)
        if task is None:
            return
        category, candidates = self.candidates(task)
        now = now_ms()
        limits = self._limits(task.tenant)
        day_key, month_key = f"{task.tenant}|{budget.day_key(now)}", f"{task.tenant}|{budget.month_key(now)}"
        spent_day, spent_month = self._spend.get(day_key) or 0, self._spend.get(month_key) or 0
        policy = task.policy or self._policy
        try:
            decision = decide(
                candidates, rng=self._rng, policy=policy, task_model=task.models[0] if task.models else None,
                remaining_micros=budget.remaining(spent_day, spent_month, limits), limit_micros=limits.tightest_micros,
            )
        except SelectionError as exc:
            await self._dead.send(message, str(exc), exc)
            return
        reserved = decision.status == "selected" and budget.reserve(spent_day, spent_month, limits,
                                                                    decision.forecast_micros)
        if reserved and reserved.ok:
            self._spend[day_key] = reserved.spent_day_micros  # before any await: tenants' tasks interleave
            self._spend[month_key] = reserved.spent_month_micros
        event = SelectionEvent(
            task_id=task.task_id, tenant=task.tenant, category=category, policy=policy, status=decision.status,
            chosen=decision.model_id, forecast_micros=decision.forecast_micros,
            remaining_micros=decision.remaining_micros, reason=decision.reason, at_ms=now,
            candidates=[
                ScoredCandidate(model_id=c.model_id, score=(decision.selection.scores.get(c.model_id, 0.0)
                                                            if decision.selection else 0.0),
                                propensity=(decision.selection.propensities.get(c.model_id, 0.0)
                                            if decision.selection else 0.0),
                                cost_micros_est=c.cost_micros_est)
                for c in candidates
            ],
        )
        deadline_ms = task.created_ms + task.timeout_ms
        if decision.model_id is not None:
            outcome = self._emit(self._model_topic(decision.model_id), task.task_id, ModelRequest(
                task=task, model_id=decision.model_id, deadline_ms=deadline_ms, expected_models=[decision.model_id]))
        else:
            step = StepContext(task_id=task.task_id, model_id="", created_ms=task.created_ms, deadline_ms=deadline_ms,
                               mode=task.mode, answer_type=task.answer_type, tenant=task.tenant, category=category)
            outcome = self._emit(self._failures, task.task_id, Failure(
                step=step, failure_class="budget_exceeded", message=decision.reason, final=True, failed_ms=now))
        await outcome
        await self._emit(self._selections, task.task_id, event)
