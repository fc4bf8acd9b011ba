"""Every size and range bound on what swarmstream reads, in one place, with its reason.

A record from outside (a task on ``swarm.tasks``, Avro or JSON) is the one input a
caller controls; everything the workers then produce carries it (a ModelRequest holds
the task, a ReviewItem the task and its result, a dead letter a prefix of the bytes).
The bounds below make two promises:

1. **No record stops a worker.** The bytes are bounded before any decoding (an Avro
   record over :data:`MAX_RECORD_BYTES`, a task over :data:`MAX_TASK_RECORD_BYTES`, a
   JSON task over :data:`MAX_JSON_TASK_BYTES` is refused unread), and every decoder's
   work is linear in them (``schemas/compiled.py``: varints of at most 10 bytes within
   int64, lengths within the bytes left, at most :data:`MAX_ARRAY_ITEMS` per array;
   JSON nested at most :data:`MAX_JSON_DEPTH` deep).
2. **Whatever a task becomes still fits in a Kafka request.** The field limits of a
   :class:`~swarmstream.schemas.models.TaskRequest`, checked whenever one is validated
   (JSON and Avro intake alike), add up to less than :data:`MAX_TASK_RECORD_BYTES`
   (``tests/schemas/test_limits.py`` encodes a task with every field at its limit), which
   leaves half of :data:`MAX_RECORD_BYTES` for what a derived record adds (a
   ModelRequest's model and conversation, a result). Two things a worker adds are not
   bounded here: a chain link's prompt transform and a tool loop's conversation.

The budget of a task record (bytes in UTF-8, not characters: 87,382 ``"€"`` are
262,146 bytes)::

    prompt            256 KiB   MAX_PROMPT_BYTES
    system             64 KiB   MAX_SYSTEM_BYTES
    json_schema        32 KiB   MAX_JSON_SCHEMA_BYTES
    labels             32 KiB   MAX_LABELS x MAX_LABEL_BYTES (256 x 128)
    models             16 KiB   MAX_MODELS x MAX_NAME_BYTES (64 x 256)
    tools              16 KiB   MAX_TOOLS x MAX_NAME_BYTES (64 x 256)
    hops               64 KiB   MAX_HOPS x MAX_NAME_BYTES (256 x 256)
    metadata           16 KiB   MAX_METADATA_BYTES (keys and values), MAX_METADATA_ENTRIES
    ids and names      ~3 KiB   MAX_ID_BYTES, MAX_NAME_BYTES (task_id, tenant, strategy, ...)
    Avro overhead      ~2 KiB   length prefixes, numbers
    -------------------------
                     ~500 KiB   < MAX_TASK_RECORD_BYTES (512 KiB)

Times are milliseconds since the epoch within years 1970..9999 and a timeout is at
most a day, so ``created_ms + timeout_ms`` (every deadline) is far inside int64:
``2**63 - 1`` as a creation time used to pass intake and wrap the deadline into an
instant timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

KiB = 1024
MiB = 1024 * KiB

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""The Avro ``int`` and ``long`` ranges: a value outside is a decode error on read and an
encode error on write (no silent wrap)."""

# --- whole records ---------------------------------------------------------------------

MAX_RECORD_BYTES = 1 * MiB
"""The largest record value swarmstream produces or decodes: aiokafka's default
``max_request_size`` and about Kafka's default ``message.max.bytes`` (1 MiB + 12), so a
larger value could not have come from a producer configured as ours. The producer is
set to it explicitly; a decoder refuses a larger value before reading a byte of it."""

MAX_TASK_RECORD_BYTES = 512 * KiB
"""The largest Avro TaskRequest accepted at intake: the field limits below add up to
less (so no valid task is refused by it), and it leaves the other half of
:data:`MAX_RECORD_BYTES` for what a record built around a task adds."""

MAX_JSON_TASK_BYTES = MAX_RECORD_BYTES
"""The largest JSON task read: larger than the Avro limit because JSON escapes text
(``\\u20ac`` is 6 bytes for a 3-byte character); the field limits still apply after
parsing. A document over it is refused before parsing."""

MAX_JSON_DEPTH = 8
"""Nesting a JSON task may have: a task is two levels deep (the object, then ``labels``,
``models`` or ``metadata``), so 8 leaves room for fields to come while a 1,000-level
document (orjson's own cap is 1,024) gets a clear error before the model validates it."""

MAX_ARRAY_ITEMS = 4096
"""The most items one Avro array or map of any record may hold (all its blocks together),
checked by the readers before they loop: a task's longest lists hold 256 (labels, hops),
a result's votes and attempts one per model call. Without it a 1 MiB record of one-byte
items (a million empty labels) costs the Python reader a million loops (~0.4 s) before
the model refuses the list; with it, a few milliseconds per array."""

DEAD_LETTER_PREFIX_BYTES = 64 * KiB
"""How much of an undecodable value a dead letter keeps: enough to see what a record
was (its marker, fingerprint and first fields, or the start of a JSON body), while a
dead letter of a 1 MiB record stays far under :data:`MAX_RECORD_BYTES`."""

# --- times -------------------------------------------------------------------------------

MIN_TIME_MS = 0
"""1970-01-01T00:00:00Z: no record of ours is older, and a negative time is a bug."""

MAX_TIME_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z, the last instant ISO 8601 (and Python's ``datetime``)
can write: any real clock is far below, and it keeps every sum below far inside int64."""

MAX_TIMEOUT_MS = 86_400_000
"""A task's ``timeout_ms``: one day. Longer work is a workflow of shorter tasks; the
task table keeps a task's state at least this long."""

MAX_DEADLINE_MS = MAX_TIME_MS + MAX_TIMEOUT_MS
"""The latest deadline (``created_ms + timeout_ms``) a record can carry, ~2.5e14: far
below ``INT64_MAX`` (~9.2e18), so no deadline arithmetic overflows a long."""

# --- task fields (UTF-8 bytes) ---------------------------------------------------------

MAX_PROMPT_BYTES = 256 * KiB
"""~64k tokens of English: more than most models' context windows take as input while
leaving room for the answer, and one such task does not slow every consumer of the topic."""

MAX_SYSTEM_BYTES = 64 * KiB
"""A system prompt with instructions and a few worked examples."""

MAX_JSON_SCHEMA_BYTES = 32 * KiB
"""A JSON Schema for a ``json`` answer: real ones are a few KiB."""

MAX_ID_BYTES = 256
"""``task_id`` and ``parent_task_id``: a UUID is 32 hex characters; 256 takes any
caller's own scheme (a URL, a compound key)."""

MAX_NAME_BYTES = 256
"""Every name a task carries (a model id, tenant, category, strategy, chain, policy,
workflow, tool, a hop ``<workflow>.<step>``): catalog ids such as
``accounts/fireworks/models/llama-v3p1-405b-instruct`` are ~50."""

MAX_LABELS = 256
"""Labels of a ``label`` task: a classification into more classes than this is better
sent as a ``text`` task."""

MAX_LABEL_BYTES = 128
"""One label: a word or a short phrase."""

MAX_MODELS = 64
"""Models a task names: the same bound as ``min_models`` and ``max_models``."""

MAX_TOOLS = 64
"""Tools a task's models may call: more than any tool registry we ship."""

MAX_SAMPLES = 16
"""Self-consistency samples per model: the gains reported for it flatten out well before
(Wang et al. 2022, GSM8K: most of the gain by 10-20 paths), and each sample is a paid call."""

MAX_STOP = 16
"""Stop sequences of a task: OpenAI takes 4, Anthropic more; a few dozen bytes each."""

MAX_STOP_BYTES = 256
"""One stop sequence."""

MAX_HOPS = 256
"""A workflow hop trail: the DSL's default ``max_hops`` is 32; a workflow declaring more
than 255 ends with a validation error at hop 256, so keep ``max_hops`` below."""

MAX_METADATA_ENTRIES = 64
"""Entries of ``metadata`` (trace ids, a caller's tags)."""

MAX_METADATA_BYTES = 16 * KiB
"""``metadata``'s keys and values together."""

MAX_MESSAGES = 256
"""Turns of a chat (``messages``): a long agent conversation with tool turns is a few dozen;
past this a caller should summarise, as models' context windows would make it anyway."""

MAX_CHAT_BYTES = MAX_PROMPT_BYTES
"""A chat task's text: ``prompt`` (its last user turn, for readers that know only prompts),
every turn's content, tool calls and ids, and the caller's tool definitions, together. One
budget with the prompt's, so a chat task takes no more of a record than a prompt task."""

CHAT_FIELDS = ("messages", "client_tools")
"""A TaskRequest's lists of records, bounded together by :data:`MAX_CHAT_BYTES` (and
``messages`` by :data:`MAX_MESSAGES`, ``client_tools`` by :data:`MAX_TOOLS` items) rather
than per item."""

@dataclass(frozen=True)
class Limit:
    """A bound and the name of its constant, so an error can point here."""

    value: int
    constant: str


def _limit(constant: str) -> Limit:
    return Limit(globals()[constant], constant)


TASK_TEXT_LIMITS: dict[str, Limit] = {
    "task_id": _limit("MAX_ID_BYTES"),
    "prompt": _limit("MAX_PROMPT_BYTES"),
    "system": _limit("MAX_SYSTEM_BYTES"),
    "json_schema": _limit("MAX_JSON_SCHEMA_BYTES"),
    "strategy": _limit("MAX_NAME_BYTES"),
    "chain": _limit("MAX_NAME_BYTES"),
    "policy": _limit("MAX_NAME_BYTES"),
    "tenant": _limit("MAX_NAME_BYTES"),
    "category": _limit("MAX_NAME_BYTES"),
    "workflow": _limit("MAX_NAME_BYTES"),
    "parent_task_id": _limit("MAX_ID_BYTES"),
    "tool_policy": _limit("MAX_NAME_BYTES"),
    "reply_to": _limit("MAX_NAME_BYTES"),
    "judge": _limit("MAX_NAME_BYTES"),
}
"""A TaskRequest's text fields and their limits in UTF-8 bytes (``answer_type`` and
``mode`` are closed sets)."""

TASK_LIST_LIMITS: dict[str, tuple[Limit, Limit]] = {
    "labels": (_limit("MAX_LABELS"), _limit("MAX_LABEL_BYTES")),
    "models": (_limit("MAX_MODELS"), _limit("MAX_NAME_BYTES")),
    "hops": (_limit("MAX_HOPS"), _limit("MAX_NAME_BYTES")),
    "tools": (_limit("MAX_TOOLS"), _limit("MAX_NAME_BYTES")),
    "stop": (_limit("MAX_STOP"), _limit("MAX_STOP_BYTES")),
}
"""A TaskRequest's lists: (most items, most UTF-8 bytes per item)."""

MODEL_REQUEST_TEXT_LIMITS: dict[str, Limit] = {"model_id": _limit("MAX_NAME_BYTES")}
MODEL_REQUEST_LIST_LIMITS: dict[str, tuple[Limit, Limit]] = {
    "expected_models": (_limit("MAX_MODELS"), _limit("MAX_NAME_BYTES")),
}
"""A ModelRequest's own fields (its task has the task's limits). ``conversation`` is bounded
by the tool loop's windowing, not here: our own workers write it, and a limit here would
fail the reader of a record we produced."""


def utf8_size(text: str) -> int:
    """Bytes ``text`` takes in UTF-8 (on the wire), without encoding ASCII text: CPython
    knows a string is ASCII in O(1), so the common case costs a ``len``."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _over(field: str, size: int, limit: Limit, unit: str) -> str:
    return (f"{field} is {size:,} {unit}, over the limit of {limit.value:,} "
            f"({limit.constant} in schemas/limits.py)")


def _text_problem(field: str, text: str, limit: Limit) -> str | None:
    # a string's UTF-8 size is between len(text) and 4 * len(text): most fields are
    # decided by the length alone, without encoding anything
    if len(text) * 4 <= limit.value:
        return None
    size = utf8_size(text)
    return None if size <= limit.value else _over(field, size, limit, "bytes in UTF-8")


def _list_problem(field: str, items: list[str], most: Limit, each: Limit) -> str | None:
    if len(items) > most.value:
        return _over(field, len(items), most, "items")
    if max(map(len, items)) * 4 <= each.value:
        return None
    for index, item in enumerate(items):
        problem = _text_problem(f"{field}[{index}]", item, each)
        if problem:
            return problem
    return None


def _metadata_problem(metadata: Mapping[str, str]) -> str | None:
    if len(metadata) > MAX_METADATA_ENTRIES:
        return _over("metadata", len(metadata), _limit("MAX_METADATA_ENTRIES"), "entries")
    chars = sum(map(len, metadata)) + sum(map(len, metadata.values()))
    if chars * 4 <= MAX_METADATA_BYTES:
        return None
    size = sum(map(utf8_size, metadata)) + sum(map(utf8_size, metadata.values()))
    if size > MAX_METADATA_BYTES:
        return _over("metadata", size, _limit("MAX_METADATA_BYTES"), "bytes in UTF-8 (keys and values)")
    return None


def _problem(values: Mapping[str, Any], text: Mapping[str, Limit],
             lists: Mapping[str, tuple[Limit, Limit]]) -> str | None:
    """The first field of ``values`` over its limit, with its size and the limit."""
    for field, limit in text.items():
        value = values[field]
        problem = _text_problem(field, value, limit) if value is not None else None
        if problem:
            return problem
    for field, (most, each) in lists.items():
        items = values[field]
        problem = _list_problem(field, items, most, each) if items else None
        if problem:
            return problem
    metadata = values.get("metadata")
    return _metadata_problem(metadata) if metadata else None


def chat_size_check(prompt: str, messages: Any, client_tools: Any) -> None:
    """Raise ``ValueError`` when a chat task's text (:data:`MAX_CHAT_BYTES`) is over its budget;
    ``messages`` and ``client_tools`` are the records of ``schemas/models.py`` (duck-typed here,
    which imports nothing from there)."""
    size = utf8_size(prompt)
    for message in messages:
        size += utf8_size(message.content) + utf8_size(message.role) + utf8_size(message.tool_call_id or "")
        for call in message.tool_calls:
            size += utf8_size(call.id) + utf8_size(call.name) + utf8_size(call.arguments)
    for tool in client_tools:
        size += utf8_size(tool.name) + utf8_size(tool.description) + utf8_size(tool.parameters)
    if size > MAX_CHAT_BYTES:
        raise ValueError(_over("messages", size, _limit("MAX_CHAT_BYTES"),
                               "bytes in UTF-8 (prompt, messages and client_tools together)"))


SizeCheck = Callable[[Mapping[str, Any]], None]


def size_check(text: Mapping[str, Limit], lists: Mapping[str, tuple[Limit, Limit]]) -> SizeCheck:
    """``check(values)`` raises ``ValueError`` naming the first field of ``values`` (a model's
    fields) over its limit, with its size and the limit; ``metadata``, where present, has its
    own two limits.

    It runs on every decode of a record that carries a task, so its common case is a
    straight line of ``len`` comparisons generated from the tables (as ``compiled.py``
    generates the codec): a string's UTF-8 size is between its length and 4 times it, so a
    field no longer than a quarter of its limit needs nothing more, and only a longer one
    takes the exact, slower path (:func:`_problem`)."""
    lines = ["def check(d):"]
    for field, limit in text.items():
        lines += [f"    v = d[{field!r}]", f"    if v is not None and len(v) > {limit.value // 4}:",
                  "        return slow(d)"]
    for field, (most, each) in lists.items():
        lines += [f"    v = d[{field!r}]",
                  f"    if v and (len(v) > {most.value} or max(map(len, v)) > {each.value // 4}):",
                  "        return slow(d)"]
    lines += ["    v = d.get('metadata')",
              f"    if v and (len(v) > {MAX_METADATA_ENTRIES} or sum(map(len, v)) + sum(map(len, v.values()))"
              f" > {MAX_METADATA_BYTES // 4}):", "        return slow(d)"]

    def slow(values: Mapping[str, Any]) -> None:
        problem = _problem(values, text, lists)
        if problem:
            raise ValueError(problem)

    namespace: dict[str, Any] = {"slow": slow}
    exec(compile("\n".join(lines), "<size check>", "exec"), namespace)  # noqa: S102 - generated from the tables above
    return namespace["check"]  # type: ignore[no-any-return]
