"""Restore horizons (``streams/engine/horizon.py``) without a broker: the arithmetic (acknowledged writes,
tombstones and writes on their way -> the offset a restore may start from), the markers, the
rewrite rule, and the timer that rewrites and publishes, over a table whose changelog is a list.

The claim every case checks in the end: a restore that starts at the horizon ends with exactly what
a restore from offset 0 ends with, whatever was on its way when the horizon was taken."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from swarmstream.streams.engine.changelog import Table
from swarmstream.streams.engine.fencing import Fenced
from swarmstream.streams.engine.horizon import (
    UNPINNED,
    HorizonKeeper,
    LiveOffsets,
    marker_key,
    newest_markers,
    parse_marker,
    rewrite_cut,
)

# -- the arithmetic -----------------------------------------------------------------------------

Op = tuple[Any, ...]


def run(ops: list[Op]) -> LiveOffsets:
    """``("read", key, offset, deleted)``: a record read by a restore; ``("wrote", key, deleted)``: memory
    changed, its record on its way; ``("acked", key, offset, deleted)``: the broker has it."""
    live = LiveOffsets()
    for op in ops:
        if op[0] == "read":
            live.read(op[1], op[2], deleted=op[3])
        elif op[0] == "wrote":
            live.wrote(op[1], deleted=op[2])
        elif op[0] == "acked":
            live.acked(op[1], op[2], deleted=op[3])
        elif op[0] == "forget":
            live.forget(op[1])
    return live


CASES: list[tuple[str, list[Op], int]] = [
    ("nothing written: the start", [], 0),
    ("every key superseded but the newest writes", [("read", "a", 0, False), ("read", "b", 1, False),
                                                    ("read", "a", 2, False)], 1),
    ("a key deleted by a tombstone pins nothing", [("read", "a", 0, False), ("read", "b", 1, False),
                                                   ("read", "a", 2, True)], 1),
    ("everything deleted: the end", [("read", "a", 0, False), ("read", "a", 1, True)], 2),
    ("a write on its way leaves the older record pinning", [("read", "a", 3, False), ("read", "b", 7, False),
                                                            ("wrote", "a", False)], 3),
    ("its ack moves the pin", [("read", "a", 3, False), ("read", "b", 7, False), ("wrote", "a", False),
                               ("acked", "a", 8, False)], 7),
    ("a first write on its way pins nothing", [("read", "a", 3, False), ("wrote", "new", False)], 3),
    ("a first write's ack pins it", [("wrote", "new", False), ("acked", "new", 5, False)], 5),
    ("a delete on its way still pins the value", [("read", "a", 3, False), ("read", "b", 7, False),
                                                  ("wrote", "a", True)], 3),
    ("its tombstone's ack lets go", [("read", "a", 3, False), ("read", "b", 7, False), ("wrote", "a", True),
                                     ("acked", "a", 8, True)], 7),
    ("deleted and written again before the tombstone's ack: still the value",
     [("read", "a", 3, False), ("read", "b", 7, False), ("wrote", "a", True), ("wrote", "a", False)], 3),
    ("... the tombstone's ack: the write on its way does not pin yet",
     [("read", "a", 3, False), ("read", "b", 7, False), ("wrote", "a", True), ("wrote", "a", False),
      ("acked", "a", 8, True)], 7),
    ("... and its ack pins it at its own offset",
     [("read", "a", 3, False), ("read", "b", 7, False), ("wrote", "a", True), ("wrote", "a", False),
      ("acked", "a", 8, True), ("acked", "a", 9, False)], 7),
    ("a value acked after memory deleted it pins until its tombstone",
     [("read", "b", 7, False), ("wrote", "a", False), ("wrote", "a", True), ("acked", "a", 8, False)], 7),
    ("... whose ack lets go", [("read", "b", 7, False), ("wrote", "a", False), ("wrote", "a", True),
                               ("acked", "a", 8, False), ("acked", "a", 9, True)], 7),
    ("forgotten by memory, still in the changelog: pinned", [("read", "a", 3, False), ("read", "b", 7, False),
                                                             ("forget", "a")], 3),
]


@pytest.mark.parametrize(("ops", "horizon"), [(ops, h) for _, ops, h in CASES], ids=[name for name, _, _ in CASES])
def test_the_horizon_is_the_oldest_newest_acknowledged_value(ops: list[Op], horizon: int) -> None:
    assert run(ops).horizon() == horizon


def test_out_of_order_pins_are_sorted_once_and_the_horizon_stays_right() -> None:
    live = run([("read", "a", 3, False), ("read", "b", 7, False), ("read", "c", 9, False),
                ("wrote", "a", True), ("wrote", "a", False)])  # a's pin (3) goes back in after 7 and 9
    assert live.horizon() == 3
    assert list(live.held) == ["a", "b", "c"]
    live.acked("a", 10, deleted=True)
    live.acked("a", 11, deleted=False)
    assert live.horizon() == 7 and live.end == 12


def test_behind_names_old_keys_in_offset_order_without_those_on_their_way() -> None:
    live = run([("read", k, i, False) for i, k in enumerate("abcdef")] + [("wrote", "b", False)])
    assert live.behind(4) == ["a", "c", "d"]
    assert live.rewritable("a", 4) and not live.rewritable("b", 4) and not live.rewritable("e", 4)
    assert not live.rewritable("absent", 4)


@pytest.mark.parametrize(("end", "live", "cut"), [
    (5_000, 10, -5_000),  # under the floor: nothing is behind
    (100_000, 10, 90_000),  # a few live keys: the floor
    (100_000, 20_000, 60_000),  # many live keys: twice as many records per live key
])
def test_rewrite_cut(end: int, live: int, cut: int) -> None:
    assert rewrite_cut(end, live, min_behind=10_000, per_live=2) == cut


def test_markers_newest_wins_not_highest_and_strangers_are_ignored() -> None:
    a, b = marker_key("app-t-changelog", 0), marker_key("app-t-changelog", 1)
    records = [(a, b'{"offset":50}'), (b, b'{"offset":7}'), (a, b'{"offset":40}'),  # a stale owner's, late
               (b"junk", b"{}"), (a, None), (marker_key("app-u-changelog", 0), b'{"offset":-1}')]
    assert newest_markers(records) == {("app-t-changelog", 0): 40, ("app-t-changelog", 1): 7}
    assert parse_marker(marker_key("x|y-changelog", 3), b'{"offset":9,"end":12,"live":1}') == ("x|y-changelog", 3, 9)


# -- a table over a changelog in a list -----------------------------------------------------------


class Log:
    """One partition's changelog: a record gets its offset when appended; acks come in offset
    order (as the broker's do for one partition), all at once on :meth:`ack` or, for a record
    sent outside a handler, with everything before it when it is sent."""

    def __init__(self, partition: int = 0) -> None:
        self.partition = partition
        self.records: list[tuple[bytes, bytes | None]] = []
        self.unacked: list[tuple[int, Callable[[int], None] | None]] = []
        self.fenced = False

    def send(self, topic: str, key: bytes, value: bytes | None, on_ack: Callable[[int], None] | None) -> int:
        self.records.append((key, value))
        self.unacked.append((len(self.records) - 1, on_ack))
        return self.partition

    async def send_now(self, topic: str, key: bytes, value: bytes | None, partition: int,
                       on_ack: Callable[[int], None]) -> None:
        if self.fenced:
            raise Fenced("the membership was lost")
        self.send(topic, key, value, on_ack)
        self.ack()

    def ack(self, upto: int | None = None) -> None:
        count = len(self.unacked) if upto is None else min(upto, len(self.unacked))
        done, self.unacked = self.unacked[:count], self.unacked[count:]
        for offset, on_ack in done:
            if on_ack is not None:
                on_ack(offset)

    def restore(self, start: int = 0, end: int | None = None) -> dict[str, Any]:
        """What a restore of records ``start`` to ``end`` (default: all) holds."""
        state: dict[str, Any] = {}
        for key, value in self.records[start:end]:
            if value is None:
                state.pop(orjson.loads(key), None)
            else:
                state[orjson.loads(key)] = orjson.loads(value)
        return state


def _table(log: Log) -> Table:
    return Table("t-changelog", log.send, send_now=log.send_now)


@pytest.mark.parametrize("settling", [False, True])
@pytest.mark.parametrize("seed", range(12))
async def test_a_restore_from_the_horizon_equals_one_from_zero_whatever_is_on_its_way(seed: int, settling: bool
                                                                                      ) -> None:
    """Random handler writes and deletes, acks in batches, expiry tombstones and rewrites from the
    timer; at every step the horizon, taken from what is acknowledged, restores what offset 0 does,
    up to the acknowledged end and up to everything appended. Settling: values of even steps leave
    memory for the settled file once acknowledged, and pin the horizon from there."""
    rng = random.Random(seed)
    log = Log()
    table = _table(log)
    if settling:
        table.settle_with(lambda held: 0 if held["step"] % 2 == 0 else None)
    keys = [f"k{i}" for i in range(12)]
    for step in range(400):
        roll = rng.random()
        key = rng.choice(keys)
        if roll < 0.45:
            table[key] = {"step": step}
        elif roll < 0.6:
            if key in table:
                del table[key]
        elif roll < 0.8:
            log.ack(rng.randrange(0, len(log.unacked) + 1))
        elif roll < 0.88:
            await table.delete_now([key], still=lambda k: True)
        else:
            await table.rewrite_now(0, len(log.records) - rng.randrange(1, 20), lambda p: True)
        live = table.offsets(0)
        if live is None:
            continue
        horizon = live.horizon()
        acked_end = live.end
        assert horizon <= acked_end <= len(log.records)
        assert log.restore(horizon, acked_end) == log.restore(0, acked_end), f"step {step}"
        assert log.restore(horizon) == log.restore(0), f"step {step}"
    log.ack()
    assert log.restore(table.offsets(0).horizon()) == log.restore(0) == dict(table.items())  # type: ignore[union-attr]


async def test_a_rewrite_moves_a_long_lived_key_forward_and_skips_one_on_its_way() -> None:
    log = Log()
    table = _table(log)
    table["month"] = 1  # written once, lives for good
    table["busy"] = 1
    for i in range(20):
        table[f"task{i}"] = i
        del table[f"task{i}"]
    log.ack()
    live = table.offsets(0)
    assert live is not None and live.horizon() == 0  # "month" pins the start
    table["busy"] = 2  # on its way: memory holds what the changelog does not have yet
    assert await table.rewrite_now(0, 30, lambda p: True) == 1  # month only: busy's own write will move it
    # the rewrite's send is acknowledged in order, with busy's write before it
    assert log.records[-2:] == [(orjson.dumps("busy"), b"2"), (orjson.dumps("month"), b"1")]
    assert live.horizon() == len(log.records) - 2 and not live.pending
    assert log.restore(live.horizon()) == log.restore(0) == {"month": 1, "busy": 2}
    assert await table.rewrite_now(0, len(log.records), lambda p: False) == 0  # not ours (a rebalance): nothing


class FakeMarkers:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, int]] = []
        self.fenced = False

    async def send(self, key: bytes, value: bytes, partition: int) -> None:
        if self.fenced:
            raise Fenced("the membership was lost")
        marker = parse_marker(key, value)
        assert marker is not None and marker[1] == partition  # partition p's marker on partition p
        self.sent.append(marker)


async def test_the_keeper_publishes_what_moved_on_partitions_it_owns_and_skips_a_fenced_round() -> None:
    logs = {0: Log(0), 1: Log(1)}
    handling = [0]  # the partition of the event "being handled"
    table = Table("t-changelog", lambda *record: logs[handling[0]].send(*record),
                  send_now=lambda topic, key, value, p, on_ack: logs[p].send_now(topic, key, value, p, on_ack))
    for p in (0, 1):
        handling[0] = p
        for i in range(5):
            table[f"p{p}-k{i}"] = i
        del table[f"p{p}-k0"]
        logs[p].ack()
    owned = {0, 1}
    markers = FakeMarkers()
    keeper = HorizonKeeper("h", lambda: [table], markers.send, owns=lambda p: p in owned, min_behind=3, per_live=0,
                           refresh_rounds=4)
    await keeper.round()
    # each: k1..k4 live at 1..4 (k0 deleted at 5): horizon 1; k1 and k2 behind 6 - 3 are written again first
    assert sorted(markers.sent) == [("t-changelog", 0, 3), ("t-changelog", 1, 3)]
    assert [orjson.loads(key) for key, _ in logs[0].records[6:]] == ["p0-k1", "p0-k2"]
    markers.sent.clear()
    keeper.min_behind = 100
    await keeper.round()
    assert markers.sent == []  # nothing moved
    owned.discard(1)
    handling[0] = 1
    table["p1-k3"] = 9  # moves p1, which is not this worker's any more
    logs[1].ack()
    handling[0] = 0
    table["p0-k3"] = 9
    logs[0].ack()
    await keeper.round()
    assert markers.sent == [("t-changelog", 0, 4)]
    markers.sent.clear()
    await keeper.round()  # the fourth: every owned partition's marker again, moved or not (MARKER_TAIL)
    assert markers.sent == [("t-changelog", 0, 4)]
    markers.sent.clear()
    markers.fenced = True
    table["p0-k4"] = 10
    logs[0].ack()
    await keeper.round()  # Fenced: the round is skipped, nothing raised
    assert markers.sent == []
    markers.fenced = False
    await keeper.round()
    assert markers.sent == [("t-changelog", 0, 6)]  # p0-k1's rewrite at 6 is the oldest now


async def test_with_checkpoints_a_round_rewrites_nothing() -> None:
    """A checkpoint holds the long-lived keys too, so rewriting them would only add writes."""
    log = Log(0)
    table = Table("t-changelog", log.send, send_now=log.send_now)
    for i in range(5):
        table[f"k{i}"] = i
    log.ack()
    keeper = HorizonKeeper("h", lambda: [table], FakeMarkers().send, owns=lambda p: True, min_behind=3, per_live=0,
                           checkpoints="c", checkpoint_min_behind=1 << 60)
    await keeper.round()
    assert len(log.records) == 5  # k0 and k1 are behind the cut (5 - 3), and neither was written again
    keeper.checkpoints = None
    await keeper.round()
    assert [orjson.loads(key) for key, _ in log.records[5:]] == ["k0", "k1"]


def test_unpinned_is_past_any_offset() -> None:
    assert UNPINNED > 1 << 60
