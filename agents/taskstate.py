"""The per-task state every mode shares, and the one way a task ends.

Intake opens a task's state; the consensus join or the chain runner moves it
on; :class:`Finisher` publishes the task's one result. All of them write the
same table (keyed by task id, co-partitioned with every task topic), so each
task has one writer: the worker that owns its partition.

An open task's state holds what the task still needs (the task itself, for more
requests and the review item; the answers so far). A finished one shrinks at once
to a :class:`DoneRecord` (~200 bytes of JSON instead of ~4 KB with its prompt),
because it is kept for the task table's whole window (``SWARM_CONSENSUS_EXPIRES_S``,
2 h: hundreds of thousands of tasks per worker) and all that its readers ask of it
is whether the task is done, whether a repeated task id is the same task, and who
answered what.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, NotRequired, Protocol, TypedDict

import orjson
from swarmstream.agents.ports import Emit
from swarmstream.schemas.models import ReviewItem, TaskRequest, TaskResult, now_ms


class Answered(TypedDict):
    """One candidate's answer as the consensus join keeps it (a model's, or one sample's)."""

    answer: str | None
    confidence: float | None
    latency_ms: int
    cost_micros: int
    input_tokens: NotRequired[int]  # absent in states written before usage was summed: 0
    output_tokens: NotRequired[int]


Failed = TypedDict("Failed", {"class": str, "latency_ms": int})
"""A candidate that failed for good: its failure class (``class`` is a Python keyword, hence
the functional form) and how long it took."""


class OpenState(TypedDict):
    """What every task's state holds while it runs, whatever its mode: the readers that serve
    every mode (the Finisher, the sweepers, intake's redelivery check) read only these.

    States are plain dicts, JSON in the changelog, so a typed record costs nothing at run time
    and keeps the changelog's shape; these classes say that shape to a reader and to mypy."""

    task: dict[str, Any]
    """``TaskRequest.model_dump()``; a state adopted from an outcome (``consensus/join._adopt``)
    knows only the fields the outcome's step carries."""
    done: bool
    deadline_ms: int


class ConsensusState(OpenState):
    """A consensus (or select) task: the candidates asked, in order, and what each said."""

    order: list[str]
    asked: list[str]
    """Candidate slots asked so far: a model id, or ``<model>#<k>`` for its sample k
    (``consensus/slots.py``)."""
    answers: dict[str, Answered]
    failures: dict[str, Failed]
    judge: NotRequired[dict[str, Any]]
    """The judge or fuser phase once the vote is in (``consensus/judge_phase.py``)."""


class ChainState(OpenState):
    """A chain task: where it is in its fallback chain (``fallback/planner.ChainProgress``)."""

    chain: dict[str, Any]
    """``ChainProgress.to_dict()``."""
    cost_micros: int
    input_tokens: NotRequired[int]
    output_tokens: NotRequired[int]


class WorkflowState(OpenState):
    """A workflow task (``workflows/runner.py``): its trail of hops and its steps' outputs."""

    workflow: str | None
    depth: int
    trail: list[str]
    """The hops so far, ``<workflow>.<step>`` each (cycle detection counts them)."""
    path: list[str]
    outputs: dict[str, dict[str, Any]]
    steps: list[dict[str, Any]]
    spent_micros: int
    running: dict[str, Any] | None
    opened_ms: int


State = ConsensusState | ChainState | WorkflowState
"""A task's state while it runs; once finished it shrinks to its :class:`DoneRecord`."""

DIGEST_BYTES = 16
"""blake2b-128: collisions are out of reach for anything a caller could do by accident,
and 32 hex characters keep a done record small."""

VOLATILE_FIELDS = frozenset({"created_ms", "category"})
"""What a redelivered task may legitimately differ in: a JSON task without ``created_ms`` gets
the time it was read, and ``category`` is filled in at intake."""


def task_digest(task: TaskRequest | Mapping[str, Any]) -> str:
    """A digest of what a task asks (every field but :data:`VOLATILE_FIELDS`), to tell a
    redelivery (same digest) from another task under a taken id (another digest) after the
    task's state has shrunk to its :class:`DoneRecord`."""
    fields = task.model_dump() if isinstance(task, TaskRequest) else task
    content = {k: v for k, v in fields.items() if k not in VOLATILE_FIELDS}
    return hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=DIGEST_BYTES).hexdigest()


def result_digest(result: TaskResult) -> str:
    """A digest of the decision a result carries (every field but ``completed_ms``, the moment
    it was made), so a result read back (a repeat after a crash, a client's copy) can be checked
    against the one the task ended with."""
    fields = result.model_dump(exclude={"completed_ms"})
    return hashlib.blake2b(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS), digest_size=DIGEST_BYTES).hexdigest()


class DoneRecord(TypedDict):
    """What a finished task's state keeps for the rest of its window: what idempotence needs,
    and what the readers of a finished state read (every one of them checks ``done`` first).

    - intake, the join, the chain runner, the model-call dedupe, the sweepers: ``done``;
    - intake, to tell a redelivered task from another under the same id: ``task_digest``
      (absent when the state was adopted from an outcome and never knew the task's content);
    - the feedback agent (``agents/stats/feedback.py``): ``category`` and ``agreed``, each
      model that answered -> 1 if its answer was the task's, else 0 (chain: the model that
      answered last), which is all it needs to score the models;
    - operators and tests: ``status``, ``mode``, ``created_ms``, ``result_digest``.
    """

    done: Literal[True]
    status: str
    mode: str
    created_ms: int
    task_digest: NotRequired[str]
    result_digest: str
    category: str | None
    agreed: dict[str, int]


def done_record(state: State, result: TaskResult) -> DoneRecord:
    """The finished form of ``state`` (a consensus, chain or workflow state) once ``result`` is out."""
    task = state["task"]
    record: DoneRecord = {
        "done": True,
        "status": result.status,
        "mode": result.mode,
        "created_ms": task["created_ms"],
        "result_digest": result_digest(result),
        "category": task.get("category"),
        "agreed": agreed_of(state, result.answer),
    }
    if "prompt" in task:  # a state adopted from an outcome (join._adopt) never saw the task's content
        record["task_digest"] = task_digest(task)
    return record


def agreed_of(state: State, answer: str | None) -> dict[str, int]:
    """Each model that answered -> 1 if its answer was the task's, 0 if not (chain mode: the
    model whose answer ended the chain, 1)."""
    if "chain" in state:
        answered = [a["model"] for a in state["chain"]["attempts"] if a.get("failure_class") is None]
        return {answered[-1]: 1} if answered else {}
    # a model's first sample stands for it: the other samples' slots are "<model>#<k>" (consensus/slots.py)
    return {model: int(a["answer"] == answer) for model, a in sorted(state.get("answers", {}).items())
            if "#" not in model}


class TaskStore(Protocol):
    """The task table, addressed by task and the task's creation time (its window)."""

    def get(self, task_id: str, created_ms: int) -> State | None: ...
    def set(self, task_id: str, created_ms: int, state: State | DoneRecord) -> None:
        """Write the state; the event being handled is acked only once it is in the changelog."""


REPLY_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""The name part of a reply topic: a gateway instance id (letters, digits, ``-``, ``_``),
so a reply topic is always a legal Kafka topic name under the results topic's own."""


class Finisher:
    """Publishes a task's result, then marks the task done.

    The done mark (the state shrunk to its :class:`DoneRecord`) is written after the
    result is acknowledged, never before, and the input is acked only once the mark
    is in the changelog (every table write holds back its event's ack): a crash in
    between can repeat a result
    (the window is one changelog write; clients dedupe by task id) but never
    lose one. While the result is in flight the task id is in ``_publishing``,
    so a redelivered event cannot end the same task twice.

    A task with a ``reply_to`` (``<results>.<name>``) also gets its result there: a gateway
    instance reads only its own reply topic, while the results topic stays the log every
    other reader (and a lookup by task id) uses. The two go out in one batch; after a crash
    that left the result published but the done mark unwritten, the reply is sent again
    (a gateway drops repeats), so a reply is never lost to that window.

    A workflow step's child task (``parent_task_id`` set) is not the caller's:
    given the workflows' step-results topic (``step_results_topic``), its
    result goes there keyed by the parent, so the workflow runner that owns the
    parent's partition gets it, and no review item is raised for it (the
    workflow decides what a split vote means).
    """

    def __init__(self, *, store: TaskStore, emit: Emit, results_topic: str, review_topic: str,
                 review_threshold: float, step_results_topic: str | None = None,
                 published: Callable[[str], bool] = lambda task_id: False) -> None:
        """``published``: whether a task's result is already on the results topic
        (``streams/engine/published.py``): then only the done mark is written."""
        self._store = store
        self._emit = emit
        self._results = results_topic
        self._review = review_topic
        self._review_threshold = review_threshold
        self._publishing: set[str] = set()
        self._step_results = step_results_topic
        self._published = published

    def busy(self, task_id: str) -> bool:
        return task_id in self._publishing

    def reply_topic(self, reply_to: object) -> str | None:
        """The task's ``reply_to`` when it names a reply topic of the results topic
        (``<results>.<name>``, a gateway instance's own, ``streams/gateway/replies.py``);
        anything else is ignored, so a caller cannot make a worker write to any other topic."""
        if not isinstance(reply_to, str) or not reply_to.startswith(self._results + "."):
            return None
        name = reply_to[len(self._results) + 1:]
        return reply_to if REPLY_NAME.fullmatch(name) else None

    async def finish(self, state: State, result: TaskResult) -> None:
        task_id, created_ms = result.task_id, state["task"]["created_ms"]
        parent = state["task"].get("parent_task_id") if self._step_results else None
        self._publishing.add(task_id)
        try:
            if parent:
                await self._emit(self._step_results, parent, result)  # type: ignore[arg-type]
                self._store.set(task_id, created_ms, done_record(state, result))
                return
            reply_to = self.reply_topic(state["task"].get("reply_to"))
            if self._published(task_id):  # published before a crash that lost the done mark
                if reply_to:  # its reply may not have been acknowledged: again (a gateway drops repeats)
                    with contextlib.suppress(ValueError):
                        await self._emit(reply_to, task_id, result)
                self._store.set(task_id, created_ms, done_record(state, result))
                return
            if result.status == "low_consensus" and "prompt" in state["task"]:
                with contextlib.suppress(ValueError):  # too large to send: the result still goes out
                    await self._emit(self._review, task_id, ReviewItem(
                        task=TaskRequest.model_validate(state["task"]),
                        result=result,
                        reason=review_reason(result, self._review_threshold),
                        flagged_ms=now_ms(),
                    ))
            try:
                if reply_to:
                    await self._emit(reply_to, task_id, result)
                await self._emit(self._results, task_id, result)
            except ValueError as exc:
                result = unsendable(result, exc)
                if reply_to:
                    await self._emit(reply_to, task_id, result)
                await self._emit(self._results, task_id, result)
            self._store.set(task_id, created_ms, done_record(state, result))
        finally:
            self._publishing.discard(task_id)


def unsendable(result: TaskResult, error: ValueError) -> TaskResult:
    """The result a task ends with when its own cannot be published (an emit raises ValueError
    for a record over the size limit, or one the codec cannot write: five models' long answers
    in the votes, say): ``failed``, saying why, without the answers, so it always fits and the
    task still ends exactly once instead of failing again at every redelivery."""
    return TaskResult(task_id=result.task_id, status="failed", mode=result.mode, strategy=result.strategy,
                      models_asked=result.models_asked, cost_micros=result.cost_micros,
                      created_ms=result.created_ms, completed_ms=result.completed_ms,
                      reason=f"the {result.status} result could not be published: {error}"[:2000])


def review_reason(result: TaskResult, review_threshold: float) -> str:
    return (
        f"agreement {result.agreement:.2f} / confidence {result.confidence:.2f} below the review threshold "
        f"{review_threshold:.2f}: {len(result.votes)} answers, {len({v.answer for v in result.votes})} distinct"
    )


SWEEP_GRACE_MS = 2_000
"""How long after its deadline a task may still be waiting before the sweeper ends
it: model calls are bounded by the deadline, so a healthy outcome arrives within a
fetch or two of it; one still missing then was lost on the way."""


def overdue(state: State, now_ms: int) -> list[tuple[str, int]]:
    """(model, attempt) of every outcome an open task still waits for, if it is overdue.

    The safety net under "every call ends in an outcome": should an outcome event be
    lost (a consumer that drops a fetched record in a rebalance, say), the task would
    wait forever; the sweeper turns each missing outcome into a timeout Failure and
    the task ends like any other (``timeout`` or ``partial``, or the chain moves on).
    """
    if state.get("done") or state["deadline_ms"] + SWEEP_GRACE_MS > now_ms:
        return []
    if "chain" in state:
        chain = state["chain"]
        if chain.get("awaiting_attempt") is None:
            return []
        return [(chain["links"][chain["index"]], chain["awaiting_attempt"])]
    judge = state.get("judge")
    if judge and not judge.get("done") and judge["index"] < len(judge["links"]):
        # the judge phase's call (consensus/judge_phase.py), by its slot key "<model>#<role>"
        return [(f"{judge['links'][judge['index']]}#{judge['role']}", 0)]
    asked = state["asked"] or ["(selector)"]
    return [(m, 0) for m in asked if m not in state["answers"] and m not in state["failures"]]


RESWEEP_FIRST_MS = 5_000
"""How long the sweeper waits before sending a swept outcome's timeout again: a few fetches
and commit intervals, time for the first one to reach the state and end the task."""

RESWEEP_MAX_MS = 300_000
"""The longest wait between two sweeps of one outcome (doubling from the first)."""


class Resweeps:
    """When the sweeper may send a missing outcome's timeout again.

    A swept Failure is keyed by task id and should end its task; if it never reaches the
    state (it lands on another partition than the state: a task another client's partitioner
    scattered, before intake forwarded tasks home), the task stays open and, without this,
    was swept again every second until its 2 h expiry. Each (task, model, attempt) is swept
    once, then again only with a doubling backoff; what is no longer overdue is forgotten."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, str, int], tuple[int, int]] = {}  # -> (next sweep at, current wait)

    def due(self, task_id: str, model: str, attempt: int, now_ms: int) -> bool:
        key = (task_id, model, attempt)
        entry = self._next.get(key)
        if entry is None:
            self._next[key] = (now_ms + RESWEEP_FIRST_MS, RESWEEP_FIRST_MS)
            return True
        at, wait = entry
        if now_ms < at:
            return False
        wait = min(wait * 2, RESWEEP_MAX_MS)
        self._next[key] = (now_ms + wait, wait)
        return True

    def repeated(self, task_id: str, model: str, attempt: int) -> bool:
        """Whether this outcome has been swept more than once."""
        entry = self._next.get((task_id, model, attempt))
        return entry is not None and entry[1] > RESWEEP_FIRST_MS

    def keep_only(self, open_task_ids: set[str]) -> None:
        """Forget the outcomes of tasks that are no longer open and overdue (ended, or expired)."""
        self._next = {key: entry for key, entry in self._next.items() if key[0] in open_task_ids}
