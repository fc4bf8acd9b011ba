"""Restore horizons: where the next owner of a table partition may start reading its changelog.

Tansu never compacts (DESIGN.md, "Brokers"), so a changelog partition holds every write ever
made and a restore from offset 0 reads them all: after 100,000-500,000 tasks (four writes each,
a tombstone at the end of the window) a restarted worker took 13 s to its first result, and the
time grew without bound. Nearly all of those records are superseded by a later write of the
same key or by its tombstone.

The **horizon** of a table partition is the lowest offset at which some key's newest record is a
value (the changelog's end if no key is live). Every record before it is superseded or deleted,
so a restore that starts there ends with what a restore from 0 ends with::

    handler's table write ──► acked at offset o ──► LiveOffsets: key -> o (a tombstone's ack: key gone)
    timer, every HORIZON_INTERVAL_S ──► keys far behind the end (rewrite_cut) written again
                                    └─► per partition that moved: marker {"offset": horizon}, keyed
                                        "<changelog>|<partition>", to partition <partition> of
                                        <app_id>-restore-horizons-changelog
    next owner ──► newest marker of each table partition (that partition's tail) ──► restore from it
                   (a disk store's mark instead when it is at or past the marker: streams/engine/changelog.py)

Why a marker is safe to start from:

- only **acknowledged** records count: a key's pin moves to a new offset when the broker
  acknowledged that write, and leaves only when its tombstone is acknowledged; a write in flight
  leaves the key's older record pinning it, and a first write in flight will land past every
  acknowledged offset, so past the horizon;
- a partition is written only by its owner, whose restore read everything from its own starting
  marker and whose acks it then tracked, so the tracking is complete; a marker, once right, stays
  right (later records only land later);
- a marker is a record like any other: sent only while the worker holds the partition and is not
  in a rebalance (``owns``), and held by the fencing lease at the wire (``streams/engine/fencing.py``),
  so a stalled worker's marker fails with ``Fenced`` (the round is skipped). One computed before
  a stall and landing after it was right when computed, and the new owner's writes all land after
  it: at worst lower than the truth. The next owner takes the newest marker, not the highest;
- with a disk store the disk's mark wins when it is at or past the marker; a disk behind the
  marker is emptied and the changelog read from the marker, never the disk and then the
  changelog from the marker (that would skip tombstones the disk never saw).

What fencing cannot stop cannot be helped here either: a stalled worker's changelog record already
on the wire lands after the new owner restored, unknown to it. A restore from 0 applies it, one
from the new owner's later marker may not: the new owner's memory never held it either.

Keys that outlive the window (chain metrics, a month's spend) would pin a horizon for good: the
timer writes such a key again, with the value memory holds, once its newest record is far behind
the partition's end (``rewrite_cut``): a restore then reads about ``REWRITE_BEHIND_PER_LIVE``
times the live keys plus a round's writes, and keys that never die cost at most one rewrite per
``REWRITE_BEHIND_PER_LIVE`` records written.

When every key is live (each task inside its 2 h window) that is still every record since the
oldest task: the same round then writes a checkpoint of the partition (``streams/engine/checkpoint.py``,
when :func:`checkpoint_due`), and the partition's marker names it (``"checkpoint"``); the next owner
loads it and reads the changelog from its tail when that is past the horizon.

With checkpoints (the engine's default) nothing is rewritten: a checkpoint holds the long-lived
keys too, so the restore's start moves with the checkpoint's tail however far back the horizon
is pinned. Rewrites then only added writes: every task's done record again once 2 x live records
were past it (+23% changelog writes), and after a restart thousands of them in flight at once
(17 MB of the restarted worker's heap in the soak's restart).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

import orjson
from swarmstream.streams.engine.checkpoint import (
    CHECKPOINT_BEHIND_PER_LIVE,
    CHECKPOINT_MIN_BEHIND,
    CheckpointRef,
    chunk_key,
)
from swarmstream.streams.engine.fencing import Fenced

if TYPE_CHECKING:
    from swarmstream.streams.engine.changelog import Table
    from swarmstream.streams.engine.settled import Settled

log = logging.getLogger(__name__)

HORIZON_INTERVAL_S = 10.0
"""How often markers are published (and keys rewritten forward). A restore reads at most what was
written since the last marker on top of what the horizon leaves: at ~4,000 changelog records/s
(1,000 tasks/s) that is 40,000 records, ~0.15 s of restore (``bench/restore.py`` restores ~300,000
records/s); a round costs a marker per table partition that moved (a few ~80-byte records)."""

REWRITE_MIN_BEHIND = 10_000
"""Records behind a partition's end below which no key is rewritten: a restore reads 10,000
records in ~30 ms, so rewriting would only add writes."""

REWRITE_BEHIND_PER_LIVE = 2
"""A key is rewritten once more than this many records per live key of its partition were written
after it, so a restore reads ~2x the live keys (plus a round's writes), and a key that never dies
is written again at most once per 2 records per live key. Measured (``bench/restore.py``'s
``all_live``: 200,000 writes, tasks never deleted, every key in its window as after the soak's
burst): 2: +23% writes, a restore reads 2.1x the live keys (71,535 records, 0.35 s, against
213,628 and 0.67 s from 0); 3: +12%, 3.2x; 4: +5%, 4x. Where tasks end with their window's
tombstone the horizon moves by itself and rewrites are rare (23 in 400,000 writes)."""

MARKER_TAIL = 5_000
"""Records read from the end of a horizons partition to find each table's newest marker. Every
table partition's marker is published again every ``MARKER_REFRESH_ROUNDS`` rounds even when it
did not move, so the newest of each is among the last rounds x tables markers (30 x ~10 tables
here); 5,000 leaves room for ~160 tables. A real cluster compacts the topic to a marker per key."""

MARKER_REFRESH_ROUNDS = 30
"""Rounds (5 min) after which an unmoved partition's marker is published again (see MARKER_TAIL)."""

REWRITES_AT_ONCE = 2_000
"""Rewrites appended and awaited together: a first round after a restore may find many keys behind,
and a few thousand fill the producer's batches without holding the event loop long (~10 ms)."""

UNPINNED = 1 << 62
"""A held key whose newest acknowledged record is not a value (none yet, or a tombstone): as an
offset it is past every real one, so ``min`` passes over it."""

MarkerSend = Callable[[bytes, bytes, int], Awaitable[None]]
"""Publishes a marker (key, value, partition of the horizons topic) outside any handler, done once
the broker has it; raises ``Fenced`` when the membership is lost. It must append the record
before its first suspension (the engine's ``send`` does), so that the horizon it carries is
computed and sent while the worker still holds the partition."""


def horizons_topic(app_id: str) -> str:
    """The app's markers: a compacted topic (the ``-changelog`` suffix: ``streams/engine/broker.py``), one
    partition per table partition number, written by that partition's owner."""
    return f"{app_id}-restore-horizons-changelog"


def marker_key(changelog: str, partition: int) -> bytes:
    return orjson.dumps(f"{changelog}|{partition}")


def parse_marker(key: bytes | None, value: bytes | None) -> tuple[str, int, int] | None:
    """(changelog, partition, offset) of a marker record; None for anything else."""
    try:
        name = orjson.loads(key or b"")
        changelog, partition = name.rsplit("|", 1)
        offset = orjson.loads(value or b"")["offset"]
        if type(offset) is int and offset >= 0:
            return changelog, int(partition), offset
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        pass
    return None


def newest_markers(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[tuple[str, int], int]:
    """The newest marker of each (changelog, partition) among ``records``, read in offset order.

    The newest, not the highest: markers of one owner only rise, and one that a stale owner sent
    late is lower, never wrong (the module's docstring)."""
    return {name: offset for name, (offset, _) in newest_marker_refs(records).items()}


def newest_marker_refs(records: Iterable[tuple[bytes | None, bytes | None]]
                       ) -> dict[tuple[str, int], tuple[int, CheckpointRef | None]]:
    """:func:`newest_markers` with each marker's checkpoint (``streams/engine/checkpoint.py``; None:
    the marker names none). A checkpoint is true whoever wrote it, so the newest marker's is used
    as its horizon is."""
    newest: dict[tuple[str, int], tuple[int, CheckpointRef | None]] = {}
    for key, value in records:
        marker = parse_marker(key, value)
        if marker is not None:
            newest[marker[0], marker[1]] = (marker[2], marker_checkpoint(value))
    return newest


def marker_checkpoint(value: bytes | None) -> CheckpointRef | None:
    try:
        return CheckpointRef.from_json(orjson.loads(value or b"").get("checkpoint"))
    except (orjson.JSONDecodeError, AttributeError):
        return None


def rewrite_cut(end: int, live: int, *, min_behind: int = REWRITE_MIN_BEHIND,
                per_live: int = REWRITE_BEHIND_PER_LIVE) -> int:
    """Keys whose newest record is before this offset are written again."""
    return end - max(min_behind, per_live * live)


class LiveOffsets:
    """One table partition's keys with the offset of their newest acknowledged value record.

    ``held``: the keys memory holds (what the table's ``keys_of`` lists), each with that offset or
    ``UNPINNED``; kept in order of offset (a key's ack moves it to the end, and the broker acks a
    partition's records in order), so the horizon is its first pinned entry, not a scan of every
    key (``min`` over 500,000 took ~7 ms). An insertion out of order is noticed and sorted once.
    ``gone``: keys memory no longer holds whose newest acknowledged record is still a value (a
    tombstone on its way). ``pending``: writes sent and not acknowledged, by key: such a key is
    not rewritten (memory may hold a value the changelog does not have yet). ``settled``: the
    table's file of keys that left memory with their offsets (``streams/engine/settled.py``), this
    partition's among them: they are live, and pin the horizon, as held keys do."""

    __slots__ = ("held", "gone", "pending", "end", "published", "restored", "checkpoint", "marked", "settled",
                 "partition", "_top", "_ordered")

    def __init__(self, start: int = 0) -> None:
        self.held: dict[str, int] = {}
        self.gone: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.end = start  # one past the newest record acknowledged or read: everything before is known
        self.published = start  # the newest marker known for this partition (read at restore, or sent)
        self.restored = True  # False while a restore is reading the changelog: nothing is rewritten or published
        self.checkpoint: CheckpointRef | None = None  # the partition's newest checkpoint (read at restore, or written)
        self.marked: CheckpointRef | None = None  # the checkpoint the newest marker sent names
        self.settled: Settled | None = None  # with ``partition``: set by a table that settles
        self.partition = -1
        self._top = -1  # the highest pinned offset in held
        self._ordered = True

    @property
    def live(self) -> int:
        return len(self.held) + len(self.gone) + (self.settled.count(self.partition) if self.settled else 0)

    def wrote(self, key: str, *, deleted: bool) -> None:
        """Memory changed and the record is on its way to the changelog."""
        pending = self.pending
        pending[key] = pending.get(key, 0) + 1
        held = self.held
        if deleted:
            offset = held.pop(key, None)
            if offset is not None and offset != UNPINNED:
                self.gone[key] = offset  # the value stays the newest acknowledged record until the tombstone's ack
        elif key not in held:
            offset = self.gone.pop(key, UNPINNED) if self.gone else UNPINNED
            held[key] = offset
            if offset != UNPINNED:
                self._placed(offset)

    def unsent(self, key: str) -> None:
        """A record of :meth:`wrote` that will never be acknowledged (its send failed)."""
        self._settle(key)

    def acked(self, key: str, offset: int, *, deleted: bool) -> None:
        """The broker has a record of ours at ``offset`` (every 2-3 us of a table write counts: the
        task table takes ~4 a task, so the steps are written out here)."""
        pending = self.pending
        count = pending.pop(key, 1)
        if count > 1:
            pending[key] = count - 1
        if offset >= self.end:
            self.end = offset + 1
        held = self.held
        if deleted:
            if key in held:
                held[key] = UNPINNED  # memory wrote it again since: that write will pin it
            elif self.gone:
                self.gone.pop(key, None)
        elif key in held:
            del held[key]
            held[key] = offset  # to the end: held stays in offset order
            if offset < self._top:
                self._ordered = False
            else:
                self._top = offset
        else:
            self.gone[key] = offset  # deleted in memory since: pinned until its tombstone's ack

    def newer(self, key: str, offset: int) -> bool:
        """Whether memory holds ``key`` from a record after ``offset``: a checkpoint's entry, loaded
        before the changelog's tail that may still hold the key's older records."""
        held = self.held.get(key)
        return held is not None and held != UNPINNED and held > offset

    def read(self, key: str, offset: int, *, deleted: bool) -> None:
        """A changelog record (or disk entry) read while restoring: memory holds what it says."""
        if offset >= self.end:
            self.end = offset + 1
        if deleted:
            self.held.pop(key, None)
            self.gone.pop(key, None)
        else:
            self._pin(key, offset)

    def forget(self, key: str) -> None:
        """Memory dropped the key, the changelog still holds it (it stays pinned)."""
        offset = self.held.pop(key, None)
        if offset is not None and offset != UNPINNED:
            self.gone[key] = offset

    def horizon(self) -> int:
        """The lowest offset a restore must read from: every record before it is superseded or deleted."""
        lowest = self.end
        if self.gone:
            lowest = min(lowest, min(self.gone.values()))
        settled = self.settled.lowest(self.partition) if self.settled is not None else None
        if settled is not None:
            lowest = min(lowest, settled)
        if not self._ordered:
            self._sort()
        for offset in self.held.values():
            if offset != UNPINNED:
                return min(lowest, offset)
        return lowest

    def behind(self, cut: int) -> list[str]:
        """Held keys whose newest record is before ``cut`` and that have no write on its way."""
        if not self._ordered:
            self._sort()
        keys = []
        pending = self.pending
        for key, offset in self.held.items():
            if offset == UNPINNED:
                continue
            if offset >= cut:
                break
            if key not in pending:
                keys.append(key)
        return keys

    def rewritable(self, key: str, cut: int) -> bool:
        """Still behind ``cut``, still held, nothing on its way (checked again right before the rewrite)."""
        offset = self.held.get(key, UNPINNED)
        return offset < cut and key not in self.pending

    def _pin(self, key: str, offset: int) -> None:
        held = self.held
        held.pop(key, None)
        held[key] = offset  # to the end: held stays in offset order
        self._placed(offset)

    def _placed(self, offset: int) -> None:
        if offset < self._top:
            self._ordered = False
        else:
            self._top = offset

    def _sort(self) -> None:
        self.held = dict(sorted(self.held.items(), key=lambda item: item[1]))
        self._top = max((o for o in self.held.values() if o != UNPINNED), default=-1)
        self._ordered = True

    def _settle(self, key: str) -> None:
        count = self.pending.get(key, 0)
        if count <= 1:
            self.pending.pop(key, None)
        else:
            self.pending[key] = count - 1


def marker_value(horizon: int, live: LiveOffsets) -> bytes:
    """``offset`` is what a restore uses; ``end`` and ``live`` say how much a restore from it reads
    and holds (for an operator reading the topic); ``checkpoint``, the partition's newest
    checkpoint, if any (a restore loads it and reads the changelog from its ``tail`` when that is
    past ``offset``)."""
    value: dict[str, object] = {"offset": horizon, "end": live.end, "live": live.live}
    if live.checkpoint is not None:
        value["checkpoint"] = live.checkpoint.to_json()
    return orjson.dumps(value)


def checkpoint_due(live: LiveOffsets, horizon: int, *, min_behind: int = CHECKPOINT_MIN_BEHIND,
                   per_live: float = CHECKPOINT_BEHIND_PER_LIVE) -> bool:
    """Whether a restore would read enough records past its start (the newer of the horizon and the
    last checkpoint's tail) to make writing the live entries again worth it."""
    start = max(horizon, live.checkpoint.tail if live.checkpoint is not None else 0)
    return live.end - start > max(min_behind, per_live * live.live)


class HorizonKeeper:
    """The timer: rewrites keys far behind each owned table partition's end (without checkpoints)
    or writes a checkpoint of each partition that is due one, then publishes the partition's
    horizon where it moved (or is due again). A lost membership (``Fenced``) skips the
    round: the next owner restores from the markers already there."""

    def __init__(self, topic: str, tables: Callable[[], Iterable[Table]], send: MarkerSend,
                 owns: Callable[[int], bool], *, min_behind: int = REWRITE_MIN_BEHIND,
                 per_live: int = REWRITE_BEHIND_PER_LIVE, refresh_rounds: int = MARKER_REFRESH_ROUNDS,
                 checkpoints: str | None = None, checkpoint_min_behind: int = CHECKPOINT_MIN_BEHIND,
                 checkpoint_per_live: float = CHECKPOINT_BEHIND_PER_LIVE) -> None:
        """``checkpoints``: the checkpoints topic (``streams/engine/checkpoint.py``); None writes none."""
        self.topic = topic
        self.interval_s = HORIZON_INTERVAL_S
        self.min_behind = min_behind
        self.per_live = per_live
        self.checkpoints = checkpoints
        self.checkpoint_min_behind = checkpoint_min_behind
        self.checkpoint_per_live = checkpoint_per_live
        self._tables = tables
        self._send = send
        self._owns = owns
        self._refresh_rounds = refresh_rounds
        self.rounds = 0

    async def round(self) -> None:
        self.rounds += 1
        try:
            if self.checkpoints is None:
                await self.rewrite()
            await self.checkpoint()
            await self.publish(refresh=self.rounds % self._refresh_rounds == 0)
        except Fenced as exc:
            log.info("restore horizons: round skipped (%s)", exc)

    async def rewrite(self) -> int:
        """Write again every key far behind its partition's end; returns how many."""
        rewritten = 0
        for table in list(self._tables()):
            for partition in table.partitions_held():
                live = table.offsets(partition)
                if live is None or not live.restored or not self._owns(partition):
                    continue
                cut = rewrite_cut(live.end, live.live, min_behind=self.min_behind, per_live=self.per_live)
                if cut > 0 and live.horizon() < cut:
                    rewritten += await table.rewrite_now(partition, cut, self._owns)
        return rewritten

    async def checkpoint(self) -> int:
        """Write a checkpoint of every owned table partition a restore would read too much of
        (:func:`checkpoint_due`); it becomes the partition's once a marker names it (:meth:`publish`).
        Returns how many were written."""
        if self.checkpoints is None:
            return 0
        written = 0
        for table in list(self._tables()):
            for partition in table.partitions_held():
                live = table.offsets(partition)
                if (live is None or not live.restored or not self._owns(partition)
                        or not checkpoint_due(live, live.horizon(), min_behind=self.checkpoint_min_behind,
                                              per_live=self.checkpoint_per_live)):
                    continue
                ref = await table.checkpoint_now(partition, self.checkpoints, self._owns)
                if ref is not None and table.offsets(partition) is live:
                    live.checkpoint = ref
                    written += 1
        return written

    async def publish(self, *, refresh: bool = False) -> int:
        """A marker for each owned table partition whose horizon moved (or each, on ``refresh``);
        returns how many were sent."""

        async def one(table: Table, partition: int) -> bool:
            live = table.offsets(partition)
            if live is None or not live.restored or not self._owns(partition):
                return False
            horizon = live.horizon()
            checkpoint = live.checkpoint
            if not (horizon > live.published or (refresh and horizon > 0) or checkpoint is not live.marked):
                return False
            # computed and appended with no suspension between (MarkerSend)
            await self._send(marker_key(table.topic, partition), marker_value(horizon, live), partition)
            if table.offsets(partition) is live:
                live.published = max(live.published, horizon)
                replaced = live.marked
                if (replaced is not None and checkpoint is not None and replaced.id != checkpoint.id
                        and replaced.topic == self.checkpoints):
                    await table.tombstone_chunks(partition, [chunk_key(table.topic, partition, replaced.id, i)
                                                             for i in range(replaced.chunks)], replaced.topic)
                live.marked = checkpoint  # after the replaced one's tombstones (a compacting broker drops it)
            return True

        sends = [one(table, partition) for table in list(self._tables()) for partition in table.partitions_held()]
        done = await asyncio.gather(*sends, return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome  # Fenced: the round is skipped (round); anything else: the timer logs it
        return sum(outcome is True for outcome in done)
