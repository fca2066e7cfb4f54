"""The async QuerySet methods without a thread.

Django's async methods run the sync ones in a thread. Here the sync method
runs on the event loop instead, with a replay table: when the compiler
needs rows that are not in the table it raises NeedQuery (a BaseException,
so no Django ``except Exception`` swallows it); run_async awaits the
worker through AsyncMoltClient, stores the rows and runs the method again,
until it completes (prefetch_related takes one round per query). Each
query goes to the worker once; what a round records (events, Django's query
log) is kept only from the round that completes.

Round k replays the k-1 queries before it, so a call's cost grows with the
square of its query count: after MAX_ROUNDS rounds (ain_bulk of many ids,
deep prefetches) the call finishes in Django's usual thread
(sync_to_async), reusing the rows already fetched, and sends the rest
through the sync client, once each. So does a call with a statement that
must go through the ORM.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypeVar, Union

from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation

from molt_db_adapter import MoltError

from . import events
from .execution import (
    Fallback, WorkerQuery, check_sqlite_functions, function_probe, learn_functions,
    on_worker_error, run_sync,
)

T = TypeVar("T")
MAX_ROUNDS = 8
Rows = list[Any]   # tuples, or dicts (WorkerQuery.as_dicts)


class NeedQuery(BaseException):
    def __init__(self, query: WorkerQuery) -> None:
        super().__init__(query.django_sql)
        self.query = query


class NeedThread(BaseException):
    """A statement of this call runs through the ORM: finish in a thread."""


@dataclass
class _Replay:
    #: per query: its rows and the seconds the worker took, or its Fallback
    results: dict[tuple[Any, ...], Union[tuple[Rows, float], Fallback]] = field(default_factory=dict)
    in_thread: bool = False


_replay: contextvars.ContextVar[Optional[_Replay]] = contextvars.ContextVar("molt_replay", default=None)


def on_event_loop() -> bool:
    """Inside run_async before it moved to a thread: the ORM cannot run here."""
    r = _replay.get()
    return r is not None and not r.in_thread


def in_replay() -> bool:
    """Inside run_async (on the loop or in its thread): rows come from, or
    go to, the replay table, never a stream."""
    return _replay.get() is not None


def fetch(q: WorkerQuery) -> tuple[Rows, float]:
    """The rows of q and the seconds the worker took: from the replay
    table, from the worker (sync), or NeedQuery on the event loop."""
    r = _replay.get()
    if r is not None and q.key in r.results:
        outcome = r.results[q.key]
        if isinstance(outcome, Fallback):
            raise outcome
        return outcome
    if r is None or r.in_thread:
        start = time.monotonic()
        rows = run_sync(q)
        return rows, time.monotonic() - start
    raise NeedQuery(q)


async def _fetch_async(q: WorkerQuery) -> tuple[Rows, float]:
    from .clients import get_async_client

    client = get_async_client()
    start = time.monotonic()
    try:
        if q.vendor == "sqlite":
            probe = function_probe(q)
            if probe is not None:
                learn_functions(probe, await client.query(probe.sql, None, **probe.request()))
            check_sqlite_functions(q)
        result = await q.target(client).query(q.sql, q.params or None, **q.request())
    except MoltError as e:
        on_worker_error(q, e)
        raise  # not reached
    return q.rows(result), time.monotonic() - start


async def run_async(fn: Callable[[], T]) -> T:
    """fn() (a sync QuerySet evaluation) with its worker queries awaited."""
    replay = _Replay()
    token = _replay.set(replay)
    try:
        for _ in range(MAX_ROUNDS):
            with events.replay_round() as records:
                try:
                    value = fn()
                except NeedQuery as need:
                    q: Optional[WorkerQuery] = need.query
                except (NeedThread, SynchronousOnlyOperation):
                    break
                else:
                    q = None
            if q is None:       # completed: keep this round's records
                for action in records:
                    action()
                return value
            try:
                replay.results[q.key] = await _fetch_async(q)
            except Fallback as e:
                replay.results[q.key] = e
        replay.in_thread = True
        return await sync_to_async(fn)()
    finally:
        _replay.reset(token)
