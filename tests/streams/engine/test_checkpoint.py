"""Checkpoints (``streams/engine/checkpoint.py``) without a broker: the chunk format, the rule for when
one is due, and the claim a restore rests on, over a table whose changelog is a list: the
checkpoint's entries plus the changelog from its tail, each record older than a loaded entry
skipped, hold exactly what a restore from offset 0 holds, whatever was on its way when it was taken."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from swarmstream.streams.engine.changelog import Table
from swarmstream.streams.engine.checkpoint import (
    FORMAT,
    CheckpointRef,
    chunk_key,
    chunk_prefix,
    decode_chunk,
    encode_chunks,
)
from swarmstream.streams.engine.horizon import (
    LiveOffsets,
    checkpoint_due,
    marker_checkpoint,
    marker_value,
)

from tests.streams.engine.test_horizon import Log


def test_chunks_round_trip_in_order_and_stay_under_their_size() -> None:
    rng = random.Random(3)
    entries = [(orjson.dumps(f"task-{i}"), bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400))), i * 7)
               for i in range(2_000)]
    chunks = list(encode_chunks(entries, chunk_bytes=16 * 1024))
    assert len(chunks) > 10 and all(c.startswith(FORMAT) and len(c) <= 16 * 1024 for c in chunks)
    assert [e for c in chunks for e in decode_chunk(c)] == entries
    big = (b'"big"', b"x" * 40_000, 1)  # larger than a chunk: a chunk of its own
    assert [decode_chunk(c) for c in encode_chunks([entries[0], big, entries[1]], chunk_bytes=16 * 1024)] == \
        [[entries[0]], [big], [entries[1]]]
    assert list(encode_chunks([])) == []
    with pytest.raises(ValueError):
        decode_chunk(b"{}")
    with pytest.raises(ValueError):
        decode_chunk(chunks[0][:-3])


def test_a_chunk_key_begins_with_its_checkpoint_prefix_only() -> None:
    assert chunk_key("a-t-changelog", 3, 120, 7).startswith(chunk_prefix("a-t-changelog", 3, 120))
    assert not chunk_key("a-t-changelog", 3, 1200, 7).startswith(chunk_prefix("a-t-changelog", 3, 120))
    key = chunk_key("a-t-changelog", 3, 120, 17)
    assert key[:key.rfind(b"|") + 1] == chunk_prefix("a-t-changelog", 3, 120)


def test_a_marker_carries_its_checkpoint_and_an_older_marker_none() -> None:
    live = LiveOffsets(100)
    assert marker_checkpoint(marker_value(90, live)) is None
    live.checkpoint = CheckpointRef(topic="a-table-checkpoints-changelog", id=100, first=4, last=9, chunks=6,
                                    entries=4000, tail=97)
    assert marker_checkpoint(marker_value(90, live)) == live.checkpoint
    assert marker_checkpoint(b'{"offset":3,"checkpoint":{"id":"x"}}') is None
    assert marker_checkpoint(b"not json") is None


@pytest.mark.parametrize(("end", "live", "horizon", "tail", "due"), [
    (9_000, 1_000, 0, None, False),  # under the floor
    (11_000, 1_000, 0, None, True),
    (11_000, 1_000, 0, 2_000, False),  # the last checkpoint's tail is the start
    (70_000, 100_000, 0, None, True),  # past half the live entries
    (40_000, 100_000, 0, None, False),
    (80_000, 1_000, 70_000, None, False),  # the horizon moved by itself (tasks deleted)
])
def test_a_checkpoint_is_due_once_a_restore_would_read_far_past_its_start(
        end: int, live: int, horizon: int, tail: int | None, due: bool) -> None:
    offsets = LiveOffsets(end)
    offsets.held = {f"k{i}": i for i in range(live)}
    if tail is not None:
        offsets.checkpoint = CheckpointRef(topic="c", id=tail, first=0, last=0, chunks=1, entries=1, tail=tail)
    assert checkpoint_due(offsets, horizon) is due


class CheckpointLog(Log):
    """The changelog as a list (``test_horizon.Log``), chunks sent to another topic kept apart."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    async def send_now(self, topic: str, key: bytes, value: bytes | None, partition: int,
                       on_ack: Callable[[int], None]) -> None:
        if topic == "checkpoints":
            self.chunks.append(value or b"")
            on_ack(len(self.chunks) - 1)
            return
        await super().send_now(topic, key, value, partition, on_ack)


def settle_even_steps(held: Any) -> int | None:
    """A settling table's rule in these tests: values of even steps leave memory (``streams/engine/settled.py``)."""
    return 0 if held["step"] % 2 == 0 else None


def restored(log: CheckpointLog, ref: CheckpointRef, upto: int | None = None, *, settling: bool = False
             ) -> dict[str, Any]:
    """What a new owner holds: the checkpoint's chunks, then the changelog from its tail."""
    table = Table("t-changelog", lambda *_: 0)
    if settling:
        table.settle_with(settle_even_steps)
    table.begin_restore(0, 0, ref)
    table.load_checkpoint(0, (decode_chunk(chunk) for chunk in log.chunks[ref.first:ref.last + 1]),
                          ref.tail)
    for offset, (key, value) in enumerate(log.records[ref.tail:upto], start=ref.tail):
        table.apply(0, key, value, offset)
    return {key: value for key, value in table.items()}


@pytest.mark.parametrize("settling", [False, True])
@pytest.mark.parametrize("seed", range(12))
async def test_a_restore_from_a_checkpoint_equals_one_from_zero_whatever_is_on_its_way(seed: int, settling: bool
                                                                                       ) -> None:
    """Random handler writes and deletes, acks in batches, expiry tombstones; at random steps a
    checkpoint, with writes and tombstones still on their way; its restore, up to what is
    acknowledged and up to everything appended since, holds what a restore from 0 does. Settling:
    half the values leave memory for the settled file once acknowledged, and back on a write."""
    rng = random.Random(seed)
    log = CheckpointLog()
    table = Table("t-changelog", log.send, send_now=log.send_now)
    if settling:
        table.settle_with(settle_even_steps)
    keys = [f"k{i}" for i in range(40)]
    checked = 0
    for step in range(600):
        roll = rng.random()
        key = rng.choice(keys)
        if roll < 0.5:
            table[key] = {"step": step}
        elif roll < 0.62:
            if key in table:
                del table[key]
        elif roll < 0.82:
            log.ack(rng.randrange(0, len(log.unacked) + 1))
        elif roll < 0.9:
            await table.delete_now([key], still=lambda k: True)
        else:
            first = len(log.chunks)
            ref = await table.checkpoint_now(0, "checkpoints", lambda p: True)
            if ref is None:
                continue
            assert (ref.first, ref.last) == (first, len(log.chunks) - 1)
            live = table.offsets(0)
            assert live is not None and ref.tail <= live.end
            assert restored(log, ref, live.end, settling=settling) == log.restore(0, live.end), f"step {step}"
            assert restored(log, ref, settling=settling) == log.restore(0), f"step {step}"
            log.ack(rng.randrange(0, len(log.unacked) + 1))  # more of what was on its way lands
            assert restored(log, ref, settling=settling) == log.restore(0), f"step {step}"
            checked += 1
    assert checked > 20
    log.ack()
    ref = await table.checkpoint_now(0, "checkpoints", lambda p: True)
    assert ref is not None and restored(log, ref, settling=settling) == log.restore(0) == dict(table.items())
    if settling:
        assert len(table) > len([key for key in keys if table.in_memory(key) is not None]) > 0
    assert await table.checkpoint_now(0, "checkpoints", lambda p: False) is None  # not ours: nothing


async def test_a_checkpoint_that_breaks_off_while_loading_is_dropped_by_the_restore_from_the_horizon() -> None:
    """Chunks load one by one (each dropped once loaded); one that fails to decode leaves part of
    the checkpoint loaded, and the restore from the horizon that follows drops it first."""
    log = CheckpointLog()
    table = Table("t-changelog", log.send, send_now=log.send_now)
    table.settle_with(settle_even_steps)
    for step in range(40):
        table[f"k{step % 25}"] = {"step": step}
    log.ack()
    ref = await table.checkpoint_now(0, "checkpoints", lambda p: True)
    assert ref is not None

    restoring = Table("t-changelog", lambda *_: 0)
    restoring.settle_with(settle_even_steps)
    restoring.begin_restore(0, 0, ref)
    with pytest.raises(ValueError):
        restoring.load_checkpoint(0, (decode_chunk(chunk) for chunk in (log.chunks[ref.first], b"{}")), ref.tail)
    assert len(restoring) == 25  # the first chunk's entries
    restoring.begin_restore(0, 0)
    for offset, (key, value) in enumerate(log.records):
        restoring.apply(0, key, value, offset)
    assert dict(restoring.items()) == log.restore(0) == dict(table.items())
