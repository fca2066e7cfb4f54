"""What the adapter decided for each query: logged on the
``molt_django_adapter`` logger (fall-backs at INFO with their reason,
worker failures at WARNING) and collected by ``capture_events()``."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

logger = logging.getLogger("molt_django_adapter")


@dataclass(frozen=True)
class Event:
    alias: str
    sql: str
    offloaded: bool          # True: the rows came from the worker
    reason: str = ""         # why it fell back to the ORM ("" when offloaded)
    thread: int = field(default_factory=threading.get_ident)   # where the rows reached Django


_sinks: contextvars.ContextVar[Optional[list[Event]]] = contextvars.ContextVar("molt_events", default=None)


#: inside a replay round (replay.run_async): what the round records, kept
#: only when the round completes (a round that stops for a query is redone)
_round: contextvars.ContextVar[Optional[list[Callable[[], None]]]] = contextvars.ContextVar("molt_round", default=None)


def when_kept(action: Callable[[], None]) -> None:
    """action() now, or at the end of the replay round if it completes."""
    pending = _round.get()
    if pending is None:
        action()
    else:
        pending.append(action)


@contextlib.contextmanager
def replay_round() -> Iterator[list[Callable[[], None]]]:
    """The records of one replay round; the caller runs them if it keeps it."""
    pending: list[Callable[[], None]] = []
    token = _round.set(pending)
    try:
        yield pending
    finally:
        _round.reset(token)


def record(alias: str, sql: str, offloaded: bool, reason: str = "", *, warn: bool = False) -> None:
    when_kept(lambda: _record(alias, sql, offloaded, reason, warn))


def _record(alias: str, sql: str, offloaded: bool, reason: str, warn: bool) -> None:
    sink = _sinks.get()
    if sink is not None:
        sink.append(Event(alias, sql, offloaded, reason))
    if offloaded:
        logger.debug("offloaded on %s: %s", alias, sql)
    else:
        logger.log(logging.WARNING if warn else logging.INFO, "ORM fallback on %s (%s): %s", alias, reason, sql)


@contextlib.contextmanager
def capture_events() -> Iterator[list[Event]]:
    """Collect the Events of the queries run inside the block (this thread
    or task, and the async variants' replays)."""
    events: list[Event] = []
    token = _sinks.set(events)
    try:
        yield events
    finally:
        _sinks.reset(token)
