"""How a long-running command stops: SIGTERM and SIGINT set one stop event on its event loop.

Every long-running command (``swarmstream broker``, ``sim-fleet``, ``worker``, ``demo``,
``top``, ``tail``, ``results``) stops the same way, through this module:

- SIGTERM (a supervisor: systemd, Docker, Kubernetes, a test) and SIGINT (Ctrl-C) run a
  handler *on the event loop* that only sets a stop event (:func:`install`);
- the command sees the event where it chooses to (between two polls, or by having its
  work cancelled, :func:`until_stopped`) and its ``finally`` blocks stop what it started:
  the embedded broker, worker processes, the simulated fleet, Kafka clients;
- it exits 0.

Why not the defaults: SIGTERM's default action ends the process at once, skipping every
``finally``, and the children this package starts run in their own session
(``start_new_session=True``: streams/engine/broker.py, streams/app/worker.py, so a Ctrl-C in the
terminal does not kill them before the parent can stop them in order), so nobody stops
them and they keep their ports. A KeyboardInterrupt is raised wherever the main thread
happens to be, between a ``Popen`` and the line that records the child, or inside a
cleanup already under way.

Why exit 0 and not 128 + the signal: the process did not die of the signal, it was asked
to stop and stopped cleanly, which is how a service ends normally; supervisors count 0 as
a clean stop (a non-zero status can trigger a restart policy or an alert), and the worker
already exited 0 on both signals. The shell's 128 + n reports a process *killed* by n,
which is what this module exists to prevent.

A signal that comes before the loop runs (imports, argument parsing, the worker building
its topology) is covered by :func:`exit_cleanly_until_loop`: nothing has been started
then, so leaving at once with status 0 is the clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TypeVar

T = TypeVar("T")

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


class StopSignal:
    """Set by the first SIGTERM or SIGINT; remembers which one came (for the message)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signum: int | None = None

    def set(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "no signal"


def install(loop: asyncio.AbstractEventLoop | None = None) -> StopSignal:
    """Make SIGTERM and SIGINT set the returned stop signal, on ``loop`` (default: the running
    one). They stay installed until the loop is closed, which restores the defaults."""
    loop = loop or asyncio.get_running_loop()
    stop = StopSignal()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set, int(signum))
    return stop


async def until_stopped(work: Awaitable[T], stop: StopSignal) -> T | None:
    """``work``'s result, or None when a stop signal comes first: then ``work`` is cancelled and
    awaited, so its ``finally`` blocks (which stop what it started) have run when this returns."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this caller was cancelled: the work goes with it
        task.cancel()
        raise
    finally:
        stopping.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        result = await task
        return result  # the work caught the cancellation and finished on its own terms
    return None


def run(main: Callable[[StopSignal], Awaitable[int]]) -> int:
    """``asyncio.run(main(stop))`` with the stop handlers installed before ``main`` starts."""

    async def runner() -> int:
        return await main(install())

    return asyncio.run(runner())


def exit_cleanly_until_loop() -> dict[int, object]:
    """Until an event loop installs its own handlers (:func:`install`), leave the process with
    status 0 on SIGTERM or SIGINT (a SystemExit, so ``finally`` blocks and atexit still run).
    Meant for the start of a long-running command, before it has started anything. Returns the
    handlers it replaced, for :func:`restore` (a command run inside another program)."""

    def leave(signum: int, frame: FrameType | None) -> None:
        sys.exit(0)

    previous = {int(signum): signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, leave)
    return previous


def restore(handlers: dict[int, object]) -> None:
    """Put back the handlers :func:`exit_cleanly_until_loop` returned."""
    for signum, handler in handlers.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]
