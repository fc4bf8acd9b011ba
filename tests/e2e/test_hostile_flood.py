"""A flood of hostile records, interleaved with valid tasks, on the real broker.

Every kind of record that stopped a worker or vanished before (issue 20): random bytes up
to the largest record a producer sends, oversized fields, truncated and wrong-fingerprint
Avro, crafted varints, JSON of wrong shapes, huge and deeply nested JSON, NaN and
Infinity, null headers and keys, out-of-range longs, a task id reused by another task in
another mode, tombstones. The promise: every valid task gets exactly one result, every
bad record exactly one dead letter (with its reason, a bounded prefix of the original,
the original's length and SHA-256, and where it came from), the worker stays up, and
the task topic's commits reach its end (nothing is held back behind a bad record).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import Counter
from dataclasses import dataclass

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from swarmstream.agents.ports import DEAD_LETTER_VALUE_BYTES
from swarmstream.bench.crash import CommittedOffsets, results_on_topic
from swarmstream.schemas.codec import MAGIC, codec
from swarmstream.schemas.models import DeadLetter, TaskRequest
from swarmstream.streams.engine.broker import bootstrap_servers, true_end_offsets

from tests.conftest import read_raw, wait_for

VALID = 100
SEED = 20
JSON = [("content-type", b"application/json")]
LARGEST = 1_048_000
"""About the largest value a client with default settings sends (1 MiB requests): a dead letter
that copied it whole would not fit a request of its own."""


@dataclass
class Bad:
    kind: str
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    key: bytes | None = None
    partition: int | None = None


def valid_task(n: int) -> TaskRequest:
    return TaskRequest(task_id=f"ok-{uuid.uuid4().hex[:8]}-{n}", prompt=f"What is {n} + 1? Answer with a number.",
                       answer_type="number")


def hostile(rng: random.Random, originals: list[TaskRequest]) -> list[Bad]:
    """~1,000 bad records of every kind; each must end as one dead letter."""
    task_fp = codec().encode(originals[0])[2:10]
    avro = codec().encode(originals[0])
    bad: list[Bad] = []

    def add(kind: str, value: bytes | None, *, json: bool = False, key: bytes | None = None,
            headers: list[tuple[str, bytes | None]] | None = None, partition: int | None = None) -> None:
        bad.append(Bad(kind, value, (headers or []) + (JSON if json else []), key, partition))

    for size in (10, 100, 1_000, 10_000):
        for _ in range(100):
            add("random bytes", rng.randbytes(rng.randint(1, size)))
    for _ in range(3):
        add("random bytes, largest", rng.randbytes(LARGEST))
    for _ in range(150):
        add("truncated avro", avro[: rng.randint(2, len(avro) - 1)])
    for _ in range(80):
        add("wrong fingerprint", MAGIC + rng.randbytes(8) + avro[10:])
    for size in (16, 1_024, 65_536, 512 * 1024, LARGEST - 10):
        add("crafted varint", MAGIC + task_fp + b"\xff" * size)
    for _ in range(60):
        add("crafted varint, short", MAGIC + task_fp + b"\xff" * rng.randint(11, 64) + b"\x01")
    for shape in (b"[]", b"1", b'"task"', b"null", b"true", b'{"prompt": 5}', b'{"prompt": ["a"]}',
                  b'{"answer_type": "number"}', b'{"prompt": "x", "mode": "vote"}', b"{", b"\xff\xfe"):
        for _ in range(10):
            add("json of a wrong shape", shape, json=True)
    add("huge json", orjson.dumps({"prompt": "x" * (LARGEST - 100)}), json=True)
    add("huge json, oversized prompt", orjson.dumps({"prompt": "€" * 300_000}), json=True)
    add("deep json", b"[" * 100_000 + b"]" * 100_000, json=True)
    add("deep json object", b'{"prompt": "x", "metadata": ' + b'{"a": ' * 500 + b"1" + b"}" * 500 + b"}", json=True)
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        for _ in range(5):
            add("nan", b'{"prompt": "What is 1 + 1?", "timeout_ms": ' + literal + b"}", json=True)
    for field_name, text in (("system", "s" * 200_000), ("json_schema", "{" + " " * 100_000 + "}")):
        add("oversized field", orjson.dumps({"prompt": "p", "answer_type": "json", field_name: text}), json=True)
    add("oversized labels", orjson.dumps({"prompt": "p", "answer_type": "label",
                                          "labels": [f"l{i}" for i in range(5_000)]}), json=True)
    add("oversized metadata", orjson.dumps({"prompt": "p", "metadata": {f"k{i}": "v" * 100 for i in range(2_000)}}),
        json=True)
    for created in (2**63, 2**63 - 1, -1, 2**64 + 5):
        for _ in range(5):
            add("out-of-range long", b'{"prompt": "What is 1 + 1?", "created_ms": %d}' % created, json=True)
    for _ in range(20):
        add("null header value", rng.randbytes(50), headers=[("content-type", None), ("x-trace", None)])
        add("non-utf8 header and key", rng.randbytes(50), key=b"\xff\xfe\xfd",
            headers=[("content-type", b"\xff\xfe"), ("x", b"\x80")])
        add("duplicate headers", b"{}", headers=[("content-type", b"application/json")] * 3)
        add("tombstone", None, key=b"tombstone")
    for original in originals[:20]:
        other = TaskRequest(task_id=original.task_id, prompt="Something else entirely", mode="chain",
                            chain="default")
        add("task id reused in another mode", codec().encode(other), key=original.task_id.encode())
    return bad


@pytest.mark.timeout(300)
async def test_a_hostile_flood_stops_nothing_and_loses_nothing(make_stack) -> None:
    rng = random.Random(SEED)
    async with make_stack(workers=1) as stack:
        topics = stack.settings.topics
        originals = [valid_task(n) for n in range(VALID)]
        bad = hostile(rng, originals)
        queue: list[tuple[str, object]] = [("valid", t) for t in originals] + [("bad", b) for b in bad]
        rng.shuffle(queue)
        # A reused id must come after the task it reuses (which then answers once, and the reuse is
        # the one refused): they share a key, so a partition, where order holds.
        queue.sort(key=lambda item: item[0] == "bad" and item[1].kind == "task id reused in another mode")

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(stack.broker_url),
                                    max_request_size=2 * 1024 * 1024)
        await producer.start()
        sources: dict[tuple[int, int], Bad] = {}
        try:
            for what, item in queue:
                if what == "valid":
                    assert isinstance(item, TaskRequest)
                    await producer.send_and_wait(topics.tasks, codec().encode(item), key=item.task_id.encode())
                else:
                    assert isinstance(item, Bad)
                    meta = await producer.send_and_wait(topics.tasks, item.value, key=item.key,
                                                        headers=item.headers, partition=item.partition)
                    sources[(meta.partition, meta.offset)] = item
        finally:
            await producer.stop()

        ids = {t.task_id for t in originals}
        await wait_for(lambda: ids <= set(stack.client.received), timeout_s=180, stack=stack,
                       what=f"{VALID} results")
        letters = await read_raw(stack.broker_url, topics.dead_letters,
                                 until=lambda records: len(records) >= len(bad), timeout_s=120)
        stack.workers[0].check_alive()
        on_topic = await results_on_topic(stack.broker_url, topics.results, ids)
        committed = await committed_to_end(stack)

    assert {t: len(c) for t, c in on_topic.items()} == {t: 1 for t in ids}
    assert {c[0].status for c in on_topic.values()} == {"ok"}
    decoded = [codec().decode_as(record.value, DeadLetter) for record in letters]
    by_source = Counter((d.partition, d.offset) for d in decoded if d.topic == topics.tasks)
    assert len(decoded) == len(bad)
    assert {source: n for source, n in by_source.items() if n != 1} == {}
    assert set(by_source) == set(sources)
    for letter in decoded:
        original = sources[(letter.partition, letter.offset)]
        assert letter.reason, original.kind
        if original.value is None:
            assert letter.value is None and letter.value_length == -1
            continue
        assert letter.value_length == len(original.value), original.kind
        assert letter.value_sha256 == hashlib.sha256(original.value).hexdigest()
        assert letter.value == original.value[:DEAD_LETTER_VALUE_BYTES]
        assert letter.value_truncated == (len(original.value) > DEAD_LETTER_VALUE_BYTES)
    assert committed, "the task topic's commits did not reach its end"


async def committed_to_end(stack, timeout_s: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    """Whether the group's commits on the task topic reach its end within ``timeout_s`` (many
    commit intervals): nothing stays held back behind a bad record."""
    tasks = stack.settings.topics.tasks
    tps = [TopicPartition(tasks, p) for p in range(stack.settings.partitions)]
    async with CommittedOffsets(stack.broker_url, stack.settings.app_id, [tasks], stack.settings.partitions) as offsets:
        ends = await true_end_offsets(bootstrap_servers(stack.broker_url), await offsets._consumer.end_offsets(tps))

        async def at_end() -> bool:
            committed = await offsets.read()
            return all((committed[tp] or 0) >= ends[tp] for tp in tps)

        try:
            await wait_for(at_end, timeout_s=timeout_s, what="commits at the task topic's end")
        except AssertionError:
            return False
    return True
