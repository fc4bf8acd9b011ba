"""Pydantic mirrors of the Avro contract in ``schemas/*.avsc``.

The ``.avsc`` files are the contract with code outside this repo; these models
are how Python code builds and reads the same records. ``tests/schemas``
checks that every field here exists there with the same type and default, so
the two cannot drift apart silently.
"""

from __future__ import annotations

import time
import uuid
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .limits import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    MAX_DEADLINE_MS,
    MAX_HOPS,
    MAX_LABELS,
    MAX_MESSAGES,
    MAX_METADATA_ENTRIES,
    MAX_MODELS,
    MAX_SAMPLES,
    MAX_STOP,
    MAX_TIME_MS,
    MAX_TIMEOUT_MS,
    MAX_TOOLS,
    MIN_TIME_MS,
    MODEL_REQUEST_LIST_LIMITS,
    MODEL_REQUEST_TEXT_LIMITS,
    TASK_LIST_LIMITS,
    TASK_TEXT_LIMITS,
    chat_size_check,
    size_check,
)

AnswerType = Literal["label", "number", "json", "text"]
Mode = Literal["consensus", "single", "chain", "select"]
StepRole = Literal["candidate", "judge", "fuse"]
"""What a model call is for: a candidate answers the task; a judge picks one of the candidates; a
fuser writes the answer from them (agents/consensus/judging.py)."""
ResultStatus = Literal["ok", "low_consensus", "partial", "timeout", "failed", "budget_exceeded", "cycle_detected",
                       "tool_loop", "max_turns", "max_tool_calls", "rejected"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_task_id() -> str:
    return uuid.uuid4().hex


class Record(BaseModel):
    """Base of every event: ``avro_name`` ties the model to its schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    avro_name: ClassVar[str]


_task_sizes = size_check(TASK_TEXT_LIMITS, TASK_LIST_LIMITS)
_model_request_sizes = size_check(MODEL_REQUEST_TEXT_LIMITS, MODEL_REQUEST_LIST_LIMITS)


class ChatToolCall(Record):
    """A tool call an assistant turn of a chat made (OpenAI ``tool_calls``, Anthropic ``tool_use``)."""

    avro_name: ClassVar[str] = "swarmstream.ChatToolCall"

    id: str
    name: str
    arguments: str = "{}"


class ChatMessage(Record):
    """One turn of a chat, in a shape both protocols render without loss: a ``tool`` turn
    answers the call ``tool_call_id`` names; an ``assistant`` turn may carry calls."""

    avro_name: ClassVar[str] = "swarmstream.ChatMessage"

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ChatToolCall] = []
    tool_call_id: str | None = None


class ClientTool(Record):
    """A tool the caller runs itself: offered to the models as it is, never run here."""

    avro_name: ClassVar[str] = "swarmstream.ClientTool"

    name: str = Field(min_length=1)
    description: str = ""
    parameters: str = "{}"


class TaskRequest(Record):
    """A caller's task. Every field is bounded (``schemas/limits.py``: text in UTF-8 bytes,
    list lengths, times within years 1970..9999, a timeout of at most a day), so a task
    that validates fits in a record and every deadline derived from it fits in a long."""

    avro_name: ClassVar[str] = "swarmstream.TaskRequest"

    task_id: str = Field(default_factory=new_task_id, min_length=1)
    created_ms: int = Field(default_factory=now_ms, ge=MIN_TIME_MS, le=MAX_TIME_MS)
    prompt: str = Field(min_length=1)
    system: str | None = None
    answer_type: AnswerType = "label"
    labels: list[str] = Field(default=[], max_length=MAX_LABELS)
    json_schema: str | None = None
    mode: Mode = "consensus"
    models: list[str] = Field(default=[], max_length=MAX_MODELS)
    strategy: str | None = None
    min_models: int = Field(default=0, ge=0, le=MAX_MODELS)
    max_models: int = Field(default=0, ge=0, le=MAX_MODELS)
    early_stop: bool = False
    chain: str | None = None
    policy: str | None = None
    timeout_ms: int = Field(default=30_000, gt=0, le=MAX_TIMEOUT_MS)
    max_tokens: int = Field(default=256, gt=0, le=1_000_000)
    tenant: str = "default"
    category: str | None = None
    metadata: dict[str, str] = Field(default={}, max_length=MAX_METADATA_ENTRIES)
    workflow: str | None = None
    hops: list[str] = Field(default=[], max_length=MAX_HOPS)
    parent_task_id: str | None = None
    tools: list[str] = Field(default=[], max_length=MAX_TOOLS)
    tool_policy: str | None = None
    max_turns: int = Field(default=0, ge=0, le=64)
    max_tool_calls: int = Field(default=0, ge=0, le=1024)
    # Self-consistency and sampling (agents/consensus/samples.py): sent to providers as they are.
    samples: int = Field(default=1, ge=1, le=MAX_SAMPLES)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX - MAX_SAMPLES)  # sample k sends seed + k
    stop: list[str] = Field(default=[], max_length=MAX_STOP)
    judge: str | None = None
    max_cost_micros: int = Field(default=0, ge=0, le=INT64_MAX)
    # The whole chat and the caller's own tools (the gateway, streams/gateway/): sent as they are.
    messages: list[ChatMessage] = Field(default=[], max_length=MAX_MESSAGES)
    client_tools: list[ClientTool] = Field(default=[], max_length=MAX_TOOLS)
    reply_to: str | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("prompt is blank")
        return prompt

    @model_validator(mode="after")
    def _within_limits(self) -> Self:
        _task_sizes(self.__dict__)
        if self.messages or self.client_tools:
            chat_size_check(self.prompt, self.messages, self.client_tools)
        return self


class ModelRequest(Record):
    avro_name: ClassVar[str] = "swarmstream.ModelRequest"

    task: TaskRequest
    model_id: str
    attempt: int = Field(default=0, ge=0, le=INT32_MAX)
    deadline_ms: int = Field(ge=MIN_TIME_MS, le=MAX_DEADLINE_MS)
    expected_models: list[str] = Field(default=[], max_length=MAX_MODELS)
    not_before_ms: int = Field(default=0, ge=MIN_TIME_MS, le=MAX_DEADLINE_MS)
    probe: bool = False
    turn: int = Field(default=0, ge=0, le=INT32_MAX)
    conversation: str | None = None
    sample: int = Field(default=0, ge=0, le=MAX_SAMPLES)
    role: StepRole = "candidate"

    @model_validator(mode="after")
    def _within_limits(self) -> Self:
        _model_request_sizes(self.__dict__)
        return self


class StepContext(Record):
    """What every model outcome carries about its task, so joins need no lookup."""

    avro_name: ClassVar[str] = "swarmstream.StepContext"

    task_id: str
    model_id: str
    attempt: int = 0
    created_ms: int
    deadline_ms: int
    mode: str = "consensus"
    answer_type: str = "label"
    strategy: str | None = None
    expected_models: list[str] = []
    tenant: str = "default"
    category: str | None = None
    sample: int = 0
    role: str = "candidate"

    @classmethod
    def of(cls, request: ModelRequest) -> StepContext:
        task = request.task
        return cls(
            task_id=task.task_id,
            model_id=request.model_id,
            attempt=request.attempt,
            created_ms=task.created_ms,
            deadline_ms=request.deadline_ms,
            mode=task.mode,
            answer_type=task.answer_type,
            strategy=task.strategy,
            expected_models=request.expected_models,
            tenant=task.tenant,
            category=task.category,
            sample=request.sample,
            role=request.role,
        )


class ModelResponse(Record):
    avro_name: ClassVar[str] = "swarmstream.ModelResponse"

    step: StepContext
    text: str
    answer: str
    finish_reason: str = "stop"
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    latency_ms: int = 0
    upstream_model: str = ""
    confidence: float | None = None
    responded_ms: int = 0
    turns: int = 1
    tool_calls: int = 0


class Failure(Record):
    avro_name: ClassVar[str] = "swarmstream.Failure"

    step: StepContext
    failure_class: str
    retryable: bool = False
    retry_after_ms: int | None = None
    status_code: int | None = None
    message: str = ""
    latency_ms: int = 0
    final: bool = True
    failed_ms: int = 0


class CastVote(Record):
    avro_name: ClassVar[str] = "swarmstream.CastVote"

    model_id: str
    answer: str
    weight: float = 1.0
    latency_ms: int = 0
    sample: int = 0


class Attempt(Record):
    avro_name: ClassVar[str] = "swarmstream.Attempt"

    model_id: str
    attempt: int = 0
    failure_class: str | None = None
    latency_ms: int = 0


class StepOutput(Record):
    """One workflow step's output, as the workflow's TaskResult reports it."""

    avro_name: ClassVar[str] = "swarmstream.StepOutput"

    step: str
    kind: str
    status: str = "ok"
    answer: str | None = None
    confidence: float = 0.0
    agreement: float = 0.0
    answered_by: str | None = None
    cost_micros: int = 0
    latency_ms: int = 0
    cached: bool = False
    hop: int = 0
    child_task_id: str | None = None
    detail: str = ""


class TaskResult(Record):
    avro_name: ClassVar[str] = "swarmstream.TaskResult"

    task_id: str
    status: ResultStatus
    mode: str = "consensus"
    answer: str | None = None
    agreement: float = 0.0
    confidence: float = 0.0
    strategy: str = ""
    tie: bool = False
    answered_by: str | None = None
    votes: list[CastVote] = []
    attempts: list[Attempt] = []
    models_asked: int = 0
    cost_micros: int = 0
    created_ms: int = 0
    completed_ms: int = 0
    reason: str = ""
    path: list[str] = []
    steps: list[StepOutput] = []
    judged_by: str | None = None
    judge_pick: int | None = None
    judge_rationale: str = ""
    judge_calls: int = 0
    judge_cost_micros: int = 0
    shuffle_seed: int | None = None
    embedder: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


class ReviewItem(Record):
    avro_name: ClassVar[str] = "swarmstream.ReviewItem"

    task: TaskRequest
    result: TaskResult
    reason: str
    flagged_ms: int


class CallRecord(Record):
    avro_name: ClassVar[str] = "swarmstream.CallRecord"

    model_id: str
    ok: bool
    failure_class: str | None = None
    at_ms: int
    probe: bool = False
    latency_ms: int = 0
    cost_micros: int = 0
    category: str | None = None
    tenant: str = "default"
    input_tokens: int = 0
    output_tokens: int = 0


class QualityEvent(Record):
    avro_name: ClassVar[str] = "swarmstream.QualityEvent"

    model_id: str
    category: str | None = None
    reward: float = Field(ge=0, le=1)
    source: str
    task_id: str
    at_ms: int


class Feedback(Record):
    avro_name: ClassVar[str] = "swarmstream.Feedback"

    task_id: str
    created_ms: int
    score: float = Field(ge=0, le=1)
    source: str = "user"


class ScoredCandidate(Record):
    avro_name: ClassVar[str] = "swarmstream.ScoredCandidate"

    model_id: str
    score: float
    propensity: float
    cost_micros_est: int


class SelectionEvent(Record):
    avro_name: ClassVar[str] = "swarmstream.SelectionEvent"

    task_id: str
    tenant: str
    category: str
    policy: str
    status: str
    chosen: str | None = None
    candidates: list[ScoredCandidate] = []
    forecast_micros: int = 0
    remaining_micros: int | None = None
    reason: str = ""
    at_ms: int


class DeadLetter(Record):
    avro_name: ClassVar[str] = "swarmstream.DeadLetter"

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: dict[str, str] = {}
    reason: str
    error_type: str = ""
    received_ms: int
    value_length: int = -1
    value_sha256: str = ""
    value_truncated: bool = False


class ToolCall(Record):
    """One tool call a model proposed (agents/tools): the only record with raw arguments."""

    avro_name: ClassVar[str] = "swarmstream.ToolCall"

    request: ModelRequest
    turn: int
    call_id: str
    index: int = 0
    count: int = 1
    tool: str
    arguments: str
    digest: str
    assistant_text: str = ""
    proposed_ms: int = 0


class ToolResult(Record):
    avro_name: ClassVar[str] = "swarmstream.ToolResult"

    call: ToolCall
    status: str
    content: str
    shared: bool = False
    latency_ms: int = 0
    cost_micros: int = 0
    completed_ms: int = 0


class AuditEvent(Record):
    avro_name: ClassVar[str] = "swarmstream.AuditEvent"

    task_id: str
    tenant: str = "default"
    model_id: str
    tool: str
    turn: int = 0
    call_id: str = ""
    digest: str = ""
    arguments: str = "{}"
    side_effect: str = ""
    decision: str
    reason: str = ""
    status: str = ""
    latency_ms: int = 0
    cost_micros: int = 0
    at_ms: int


class Approval(Record):
    avro_name: ClassVar[str] = "swarmstream.Approval"

    task_id: str
    tool: str
    digest: str = ""
    approved: bool = True
    approver: str = ""
    reason: str = ""
    at_ms: int


ReviewAction = Literal["accept", "candidate", "answer"]


class ReviewDecision(Record):
    """A person's decision on a review item (the console): its own event, so every reviewer's
    queue is folded from the same log and an item resolved by one is gone for all."""

    avro_name: ClassVar[str] = "swarmstream.ReviewDecision"

    task_id: str
    created_ms: int
    action: ReviewAction
    answer: str
    model_id: str | None = None
    consensus: str | None = None
    correct_models: list[str] = []
    reviewer: str = ""
    note: str = ""
    decided_ms: int


RECORDS: tuple[type[Record], ...] = (
    TaskRequest,
    ModelRequest,
    StepContext,
    ModelResponse,
    Failure,
    TaskResult,
    ReviewItem,
    CallRecord,
    QualityEvent,
    Feedback,
    SelectionEvent,
    DeadLetter,
    ToolCall,
    ToolResult,
    AuditEvent,
    Approval,
    ReviewDecision,
)
"""Top-level event types, each with its own ``.avsc`` file."""
