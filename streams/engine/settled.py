"""Settled table entries: values that only a delete or a new write of their key will change (the
task table's finished tasks), kept in a local SQLite file instead of the Python heap.

A worker's task table holds every task of its 2 h window, hundreds of thousands of entries, and
each finished one is read rarely (a redelivered event, a late outcome, feedback). In dicts each
cost ~310 bytes of heap (its key, its ~120-byte value, two dict slots and an offset: tracemalloc
on a restarted worker), 31 MB per 100,000 tasks, and a restarted worker held them all at once.
Here an entry costs no heap at all: its row is in a file the kernel caches, and SQLite keeps at
most ``CACHE_KIB`` of pages of its own. A lookup costs a few microseconds, a finished task two
(its entry settles once, its window's tombstone deletes it once).

The file is a copy of what the changelog says, never the truth: it is created empty, nothing
reads it after a restart (the changelog and its checkpoints do), and its name is unlinked as
soon as it is open. So it needs no journal and no fsync (``PRAGMA``s below): a crash loses
nothing the changelog has, and leaves no file behind.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path

CACHE_KIB = 1024
"""SQLite's own page cache (its default is 2 MiB): the three b-trees' inner pages of 100,000
entries (~27 MB of file) are ~1% of it, ~300 KB, so a lookup reads one or two leaf pages from
the kernel's cache; the rest of the file costs no RSS. A task table and a workflow table each
have one."""

WRITES_PER_COMMIT = 1_000
"""Writes made in one transaction: a statement in a transaction of its own cost ~10 us (its pages
written out each time), in one of 1,000 ~5 us. Nothing waits for a commit (nothing reads the file
but this connection, which sees its own writes)."""

_SCHEMA = """
CREATE TABLE entries (key TEXT PRIMARY KEY, partition INTEGER NOT NULL, value BLOB NOT NULL,
                      offset INTEGER NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX by_offset ON entries (partition, offset);
CREATE INDEX by_expiry ON entries (expires);
"""


class Settled:
    """Settled entries of one table, by key, each with its partition, the changelog value that
    says it, that record's offset (it pins the partition's restore horizon,
    ``streams/engine/horizon.py``) and when it may go (ms since the epoch)."""

    def __init__(self, directory: Path | None = None) -> None:
        folder = Path(tempfile.mkdtemp(prefix="swarm-settled-", dir=directory))
        self._db = sqlite3.connect(folder / "entries.sqlite", isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE", "temp_store=MEMORY",
                       f"cache_size=-{CACHE_KIB}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(_SCHEMA)
        # open now and never opened by name again (no journal, temp tables in memory): unlinked at
        # once, it is gone with the process however that ends (a SIGKILLed worker leaves no file;
        # where an open file cannot be unlinked, Windows, it stays until the temp folder is cleaned)
        shutil.rmtree(folder, ignore_errors=True)
        self._counts: Counter[int] = Counter()
        self._writes = 0
        self._db.execute("BEGIN")

    def get(self, key: str) -> tuple[int, bytes, int] | None:
        """(partition, value, offset) of ``key``; None when it is not settled."""
        row = self._db.execute("SELECT partition, value, offset FROM entries WHERE key = ?", (key,)).fetchone()
        return row  # type: ignore[no-any-return]

    def __contains__(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None

    def put(self, partition: int, key: str, value: bytes, offset: int, expires_ms: int) -> None:
        """Settle ``key`` (not settled now: :meth:`take` it first)."""
        self._db.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?)", (key, partition, value, offset, expires_ms))
        self._counts[partition] += 1
        self._wrote(1)

    def put_many(self, partition: int, entries: list[tuple[str, bytes, int, int]]) -> None:
        """(key, value, offset, expires_ms) of keys none of which is settled: a checkpoint's, loaded
        into a partition just dropped."""
        self._db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?)",
                             ((key, partition, value, offset, expires) for key, value, offset, expires in entries))
        self._counts[partition] += len(entries)
        self._wrote(len(entries))

    def take(self, key: str) -> tuple[int, int] | None:
        """Unsettle ``key``: (partition, offset) it had; None when it was not settled."""
        # no DELETE ... RETURNING: SQLite 3.35 and newer only, and Python uses the system's
        row = self._db.execute("SELECT partition, offset FROM entries WHERE key = ?", (key,)).fetchone()
        if row is not None:
            self._db.execute("DELETE FROM entries WHERE key = ?", (key,))
            self._counts[row[0]] -= 1
            self._wrote(1)
        return row  # type: ignore[no-any-return]

    def count(self, partition: int) -> int:
        return self._counts[partition]

    def __len__(self) -> int:
        return sum(self._counts.values())

    def lowest(self, partition: int) -> int | None:
        """The lowest offset among ``partition``'s entries (None: it has none)."""
        if not self._counts[partition]:
            return None
        lowest = self._db.execute("SELECT min(offset) FROM entries WHERE partition = ?", (partition,)).fetchone()[0]
        return lowest  # type: ignore[no-any-return]

    def slice(self, partition: int, after: int, limit: int) -> list[tuple[str, bytes, int]]:
        """(key, value, offset) of up to ``limit`` entries of ``partition`` past offset ``after``, in
        offset order: a checkpoint reads them in slices with the event loop's other work between."""
        return self._db.execute("SELECT key, value, offset FROM entries WHERE partition = ? AND offset > ? "
                                "ORDER BY offset LIMIT ?", (partition, after, limit)).fetchall()

    def due(self, now_ms: int, limit: int) -> list[str]:
        """Up to ``limit`` keys whose time has come."""
        return [key for (key,) in self._db.execute("SELECT key FROM entries WHERE expires <= ? LIMIT ?",
                                                   (now_ms, limit))]

    def items(self) -> list[tuple[str, bytes]]:
        return self._db.execute("SELECT key, value FROM entries").fetchall()

    def drop(self, partition: int) -> None:
        """Forget ``partition`` (it moved away, or is about to be restored)."""
        if self._counts.pop(partition, 0):
            self._db.execute("DELETE FROM entries WHERE partition = ?", (partition,))
            self._wrote(WRITES_PER_COMMIT)

    def _wrote(self, count: int) -> None:
        self._writes += count
        if self._writes >= WRITES_PER_COMMIT:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._writes = 0

    def close(self) -> None:
        self._db.close()
