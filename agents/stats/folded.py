"""What every worker folds from the replicated logs, and that state as a checkpoint.

The circuit breakers (``agents/fallback/board.py``) and the model stats
(``agents/stats/book.py``) are both folds of ``swarm.calls``; the stats also
of ``swarm.quality``. A starting worker loads the newest checkpoint of both
instead of folding every call ever made (``streams/app/logs.py``). Pure:
records in, JSON-able state out and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from swarmstream.agents.fallback.board import BoardState, CircuitBoard
from swarmstream.agents.stats.book import BookEntry, ModelBook
from swarmstream.schemas.models import CallRecord


@dataclass
class FoldedState:
    book: list[BookEntry]
    board: BoardState


_STATE = TypeAdapter(FoldedState)


class FoldedViews:
    def __init__(self, book: ModelBook, board: CircuitBoard) -> None:
        self.book = book
        self.board = board

    def fold_call(self, record: CallRecord) -> None:
        self.board.apply(record)
        self.book.add_call(record)

    def dump(self) -> Any:
        return _STATE.dump_python(FoldedState(self.book.state(), self.board.state()), mode="json")

    def load(self, state: Any) -> None:
        """Both views as ``state`` has them; a ValueError (and neither view changed) when it is not one."""
        loaded = _STATE.validate_python(state)
        self.book.load(loaded.book)
        self.board.load(loaded.board)
