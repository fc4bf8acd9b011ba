"""Every model's circuit breaker, derived from the circuit log.

Model-call agents append one CallRecord per call to ``swarm.calls`` (keyed
by model, so each model's records keep their order). Every worker folds the
whole log into a :class:`CircuitBoard`, so all workers see the same
breakers, a restarted worker rebuilds them from a checkpoint and the log after
it (``agents/stats/folded.py``), and
``swarmstream stats`` recomputes them the same way: the log is the
changelog. Pure: records in, admissions out.

Probes: when a breaker half-opens, a worker admits one probe and marks it
locally (:meth:`CircuitBoard.begin_probe`); two workers may each send one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from swarmstream.agents.fallback import circuit
from swarmstream.agents.fallback.circuit import Admission, CircuitConfig
from swarmstream.schemas.models import CallRecord


@dataclass
class BoardState:
    states: dict[str, circuit.State]
    transitions: list[tuple[str, str, str, int]]
    """(model, from, to, how many times)."""


class CircuitBoard:
    def __init__(self, config_for: Callable[[str], CircuitConfig], clock: Callable[[], int]) -> None:
        self._config_for = config_for
        self._clock = clock
        self._states: dict[str, circuit.State] = {}
        self.transitions: Counter[tuple[str, str, str]] = Counter()
        """(model, from, to) -> how many times."""

    def apply(self, event: CallRecord) -> None:
        state, transition = circuit.record_outcome(
            self._states.get(event.model_id),
            event.failure_class,
            now_ms=event.at_ms,
            config=self._config_for(event.model_id),
        )
        self._states[event.model_id] = state
        if transition is not None:
            self.transitions[(event.model_id, *transition)] += 1

    def admit(self, model: str, *, at_ms: int | None = None) -> Admission:
        """May ``model`` be called now (or at ``at_ms``, for a call planned for later)?"""
        now = self._clock() if at_ms is None else at_ms
        return circuit.admit(self._states.get(model), now_ms=now, config=self._config_for(model))

    def begin_probe(self, model: str) -> None:
        state, transition = circuit.begin_probe(self._states.get(model), now_ms=self._clock())
        self._states[model] = state
        if transition is not None:
            self.transitions[(model, *transition)] += 1

    def state(self) -> BoardState:
        """The breakers and the transitions counted, to be loaded by another board (a checkpoint
        of the log). A probe this worker began is in it: a board that loads it waits for that
        probe's outcome in the log, as this one would have."""
        return BoardState(states=dict(self._states),
                          transitions=[(*key, n) for key, n in sorted(self.transitions.items())])

    def load(self, state: BoardState) -> None:
        """Become a board that folded what ``state`` was taken from."""
        self._states = dict(state.states)
        self.transitions = Counter({(model, before, after): n for model, before, after, n in state.transitions})

    def states(self) -> Mapping[str, str]:
        return {model: str(circuit.state_of(state)) for model, state in sorted(self._states.items())}
