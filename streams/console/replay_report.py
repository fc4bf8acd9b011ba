"""The replay page: a recording from the recordings folder, evaluated as ``swarmstream replay``
does (``agents/replay/summary.py``), with its reliability diagram. An evaluation runs in a
thread (seconds for a large file) and is kept per file and modification time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmstream.agents.replay.plot import png_bytes, reliability_image
from swarmstream.agents.replay.recording import read_recording
from swarmstream.agents.replay.summary import evaluate

RECORDING_SUFFIXES = (".jsonl", ".jsonl.gz", ".avro", ".json", ".gz")

KEPT = 8
"""Evaluations kept: a reviewer flips between a few recordings, not hundreds."""


@dataclass(frozen=True)
class ReplayReport:
    summary: dict[str, Any]
    diagram_png: bytes


class ReplayReports:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[tuple[str, float], ReplayReport] = {}

    def files(self) -> list[str]:
        """Recordings directly in the folder, by name: the page offers only these (no paths)."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_file() and p.name.endswith(RECORDING_SUFFIXES))

    async def report(self, name: str) -> ReplayReport:
        path = self.folder / name
        key = (name, path.stat().st_mtime)
        found = self._cache.get(key)
        if found is None:
            found = await asyncio.to_thread(_evaluate, path)
            if len(self._cache) >= KEPT:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = found
        return found


def _evaluate(path: Path) -> ReplayReport:
    evaluation = evaluate(read_recording(path))
    return ReplayReport(evaluation.summary, png_bytes(reliability_image(evaluation.plot_panels())))
