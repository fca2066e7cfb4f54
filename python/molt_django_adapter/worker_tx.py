"""worker_transaction(): the reads of a block through one worker transaction.

Inside Django's atomic() nothing is offloaded by default: the worker's
connections cannot see the block's uncommitted writes. A block that wants
its reads from one consistent snapshot of the database instead (a report
over several QuerySets, repeatable read, without holding Django's own
connection), and accepts that they do not see Django's uncommitted writes,
asks for it:

    from molt_django_adapter import worker_transaction
    with transaction.atomic(), worker_transaction(isolation="repeatable_read"):
        total = Order.objects.aggregate(Sum("amount"))     # one snapshot
        rows = list(Order.objects.filter(...).values())    # the same one

Every read QuerySet of that database evaluated in the block (unless marked
``offload(False)``) then goes to the worker with the transaction's tx_id,
inside atomic() too. A read the worker cannot take raises
TransactionManagementError instead of quietly running on Django's
connection, outside the snapshot. Writes stay on the ORM. The worker
transaction is READ ONLY unless ``read_only=False`` and the alias is in
MOLT_DB["ALLOW_WRITE"]; it ends (commit, or rollback on an exception) with
the block. ``aworker_transaction`` is the same for the async QuerySet API
(``async with``); each serves its own kind of evaluation.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, AsyncIterator, Iterator, Optional

from django.db import DEFAULT_DB_ALIAS
from django.db.transaction import TransactionManagementError

from molt_db_adapter import AsyncTransaction, MoltError, Transaction

from .conf import molt_settings, worker_alias

__all__ = ["worker_transaction", "aworker_transaction", "active_transaction"]

# Django alias -> the worker transaction its reads go through
_active: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("molt_worker_tx", default={})


def active_transaction(alias: str) -> Optional[Any]:
    """The Transaction or AsyncTransaction the reads of ``alias`` go
    through here, or None."""
    return _active.get().get(alias)


def _options(using: Optional[str], isolation: Optional[str], read_only: bool,
             deferrable: bool) -> tuple[str, dict[str, Any]]:
    alias = using or DEFAULT_DB_ALIAS
    if active_transaction(alias) is not None:
        raise TransactionManagementError(
            f"molt_django_adapter: a worker_transaction() of {alias!r} is open already "
            "(nest savepoints with tx.transaction())")
    if not read_only and alias not in molt_settings()["ALLOW_WRITE"]:
        read_only = True  # the worker would make it read only anyway
    return alias, dict(db_alias=worker_alias(alias), isolation=isolation,
                       read_only=read_only, deferrable=deferrable)


def _begin_failed(alias: str, e: MoltError) -> TransactionManagementError:
    err = TransactionManagementError(
        f"molt_django_adapter: worker_transaction() on {alias!r} could not begin: "
        f"{type(e).__name__}: {e}")
    err.__cause__ = e
    return err


@contextlib.contextmanager
def _bound(alias: str, tx: Any) -> Iterator[None]:
    """The reads of alias go through tx in the block."""
    token = _active.set({**_active.get(), alias: tx})
    try:
        yield
    finally:
        _active.reset(token)


@contextlib.contextmanager
def worker_transaction(using: Optional[str] = None, *, isolation: Optional[str] = "repeatable_read",
                       read_only: bool = True, deferrable: bool = False) -> Iterator[Transaction]:
    """The block's reads of ``using`` through one worker transaction (sync
    QuerySet evaluation). Yields the molt_db_adapter Transaction."""
    from .clients import get_client

    alias, opts = _options(using, isolation, read_only, deferrable)
    tx = get_client().transaction(**opts)
    try:
        tx.__enter__()
    except MoltError as e:
        raise _begin_failed(alias, e) from None
    with _bound(alias, tx):
        try:
            yield tx
        except BaseException as e:
            tx.__exit__(type(e), e, e.__traceback__)
            raise
        tx.__exit__(None, None, None)


@contextlib.asynccontextmanager
async def aworker_transaction(using: Optional[str] = None, *, isolation: Optional[str] = "repeatable_read",
                              read_only: bool = True, deferrable: bool = False) -> AsyncIterator[AsyncTransaction]:
    """worker_transaction for the async QuerySet API (``async with``)."""
    from .clients import get_async_client

    alias, opts = _options(using, isolation, read_only, deferrable)
    tx = get_async_client().transaction(**opts)
    try:
        await tx.__aenter__()
    except MoltError as e:
        raise _begin_failed(alias, e) from None
    with _bound(alias, tx):
        try:
            yield tx
        except BaseException as e:
            await tx.__aexit__(type(e), e, e.__traceback__)
            raise
        await tx.__aexit__(None, None, None)


def refused(alias: str, reason: str) -> TransactionManagementError:
    """A read inside worker_transaction() that cannot go through it."""
    return TransactionManagementError(
        f"molt_django_adapter: this read cannot go through the worker_transaction() of "
        f"{alias!r} (running it on Django's connection would leave the transaction's "
        f"snapshot): {reason}")
