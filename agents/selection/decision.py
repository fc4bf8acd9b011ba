"""One selection decision for one task: budget filter, manual override, policy.

``decide`` is what the distributor calls for a ``select`` task: it keeps the
candidates the tenant's remaining budget allows, lets a task that names a model
have it, asks the policy otherwise (with a stronger cost penalty as the budget
runs low), and returns either the selection or a ``budget_exceeded`` decision
carrying the forecast that did not fit. Pure: the caller reserves the chosen
forecast (budget.reserve) and publishes; the decision's ``to_dict`` is what the
task's result records (policy, candidates with scores and propensities, why).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from . import budget
from .policies import (
    DEFAULT_POLICY,
    Candidate,
    Policy,
    Selection,
    SelectionError,
    select,
)

DecisionStatus = Literal["selected", "budget_exceeded"]


@dataclass(frozen=True, slots=True)
class SelectionDecision:
    status: DecisionStatus
    selection: Selection | None  # None when budget_exceeded
    forecast_micros: int  # the chosen model's forecast; when exceeded, the cheapest that did not fit
    remaining_micros: int | None  # budget left before this task (None: unlimited)
    excluded: tuple[str, ...]  # candidates the budget ruled out
    reason: str

    @property
    def model_id(self) -> str | None:
        return self.selection.model_id if self.selection else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "selection": self.selection.to_dict() if self.selection else None,
            "forecast_micros": self.forecast_micros,
            "remaining_micros": self.remaining_micros,
            "excluded": list(self.excluded),
            "reason": self.reason,
        }


def _exceeded(
    forecast_micros: int, remaining_micros: int | None, excluded: Sequence[str], why: str
) -> SelectionDecision:
    return SelectionDecision("budget_exceeded", None, forecast_micros, remaining_micros, tuple(excluded), why)


def decide(
    candidates: Sequence[Candidate],
    *,
    rng: np.random.Generator,
    policy: str | Policy = DEFAULT_POLICY,
    task_model: str | None = None,
    remaining_micros: int | None = None,
    limit_micros: int | None = None,
) -> SelectionDecision:
    """Choose a model within budget, or say ``budget_exceeded`` with the forecast.

    ``remaining_micros`` is budget.remaining(...) for the task's tenant (None: no
    limit), ``limit_micros`` the tightest limit (for budget pressure). A named
    ``task_model`` must be among ``candidates`` when a limit is set, because its
    forecast is needed to check it fits.
    """
    if not candidates and not task_model:
        raise SelectionError("no candidate models to choose from")
    if task_model:
        named = next((c for c in candidates if c.model_id == task_model), None)
        if named is None and remaining_micros is not None:
            raise SelectionError(
                f"task names model {task_model!r}, which is not among the candidates "
                f"({', '.join(c.model_id for c in candidates) or 'none'}): "
                "its cost cannot be forecast against the budget; pass it as a candidate"
            )
        forecast = named.cost_micros_est if named else 0
        if remaining_micros is not None and forecast > remaining_micros:
            return _exceeded(
                forecast,
                remaining_micros,
                [task_model],
                f"named model {task_model!r} forecasts {forecast} micros, {remaining_micros} left",
            )
        chosen = select(candidates, rng=rng, task_model=task_model)
        return SelectionDecision("selected", chosen, forecast, remaining_micros, (), chosen.reason)

    fits = budget.affordable(candidates, remaining_micros)
    fit_ids = {c.model_id for c in fits}
    excluded = tuple(c.model_id for c in candidates if c.model_id not in fit_ids)
    if not fits:
        cheapest = min(c.cost_micros_est for c in candidates)
        return _exceeded(
            cheapest,
            remaining_micros,
            excluded,
            f"no model fits the budget: cheapest forecast {cheapest} micros, {remaining_micros} left",
        )
    multiplier = budget.cost_weight_multiplier(remaining_micros, limit_micros)
    chosen = select(fits, rng=rng, policy=policy, cost_weight_multiplier=multiplier)
    if excluded:  # log them with propensity 0, so a replay sees the whole candidate set
        propensities = {**chosen.propensities, **dict.fromkeys(excluded, 0.0)}
        reason = f"{chosen.reason}; over budget: {', '.join(excluded)}"
        chosen = Selection(chosen.model_id, chosen.scores, propensities, chosen.policy, reason)
    forecast = next(c.cost_micros_est for c in fits if c.model_id == chosen.model_id)
    return SelectionDecision("selected", chosen, forecast, remaining_micros, excluded, chosen.reason)
