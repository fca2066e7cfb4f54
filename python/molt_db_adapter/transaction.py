"""Session-bound transactions (contract section 11): ``client.transaction()``
and ``aclient.transaction()``.

A transaction lives on the worker connection that began it and holds one
database connection of its alias until it ends. Its statements go one at
a time (the worker refuses a second while one runs) and are never resent
after a worker death: the transaction died with it. Nested
``tx.transaction()`` scopes are savepoints; scopes end innermost first.

    with client.transaction(isolation="repeatable_read") as tx:
        row = tx.query("select qty from stock where id = $1 for update", [7]).rows[0]
        tx.execute("update stock set qty = $1 where id = $2", [row[0] - 1, 7])
        with tx.transaction():          # SAVEPOINT
            tx.execute(...)             # rolled back alone if this block raises

Normal exit commits (releases a savepoint), an exception rolls back (to
the savepoint) and propagates. A client without db.write for the alias
gets a read-only transaction whatever it asks (``tx.read_only``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .envelope import tx_begin_payload, tx_id_payload
from .errors import InvalidInput, MoltError

if TYPE_CHECKING:
    from .async_client import AsyncQueryStream
    from .results import ExecResult, QueryResult
    from .sync_client import QueryStream

__all__ = ["Transaction", "AsyncTransaction"]


class _Scope:
    """What both kinds share: the transaction's id and alias, the scope's
    depth, and the checks before each use."""

    def __init__(self, client: Any, parent: Optional["_Scope"], db_alias: Optional[str],
                 isolation: Optional[str], read_only: bool, deferrable: bool,
                 timeout_ms: Optional[int]) -> None:
        self._client = client
        self._parent = parent
        self._root: _Scope = parent._root if parent is not None else self
        self.db_alias: str = parent.db_alias if parent is not None else (db_alias or client.db_alias)
        self._timeout_ms = timeout_ms
        self._payload = None if parent is not None else tx_begin_payload(
            db_alias=self.db_alias, isolation=isolation, read_only=read_only, deferrable=deferrable)
        #: the worker's tx_id, once begun
        self.id: Optional[int] = parent.id if parent is not None else None
        #: True when the worker made it read only (no db.write, or asked)
        self.read_only: bool = parent.read_only if parent is not None else read_only
        self._depth = -1        # the savepoint depth this scope opened (0: the transaction)
        self._open_depth = 0    # root: scopes open now, savepoints included
        self._done = False

    def _began(self, doc: dict[str, Any]) -> None:
        self.id = int(doc["tx_id"])
        self.read_only = bool(doc.get("read_only", self.read_only))
        self._depth = int(doc.get("depth", 0))
        self._root._open_depth = self._depth + 1

    def _check_open(self, what: str) -> int:
        if self._done or self._root._done:
            raise InvalidInput(f"{what}: the transaction (or savepoint) has ended", client_side=True)
        if self.id is None:
            raise InvalidInput(f"{what}: the transaction has not begun (use it in a with block)",
                               client_side=True)
        return self.id

    def _check_innermost(self, what: str) -> None:
        self._check_open(what)
        if self._root._open_depth != self._depth + 1:
            raise InvalidInput(f"{what}: a savepoint inside this scope is still open "
                               "(scopes end innermost first)", client_side=True)

    def _ended(self, doc: dict[str, Any]) -> None:
        self._done = True
        self._root._open_depth = self._depth
        if doc.get("ended"):
            self._root._done = True

    def _end_failed(self, e: MoltError) -> None:
        """The worker's error for this scope's end: InvalidInput means it
        did not run it (busy, unknown); anything else ended the scope (at
        depth 0 the transaction: the worker rolled it back)."""
        if not isinstance(e, InvalidInput):
            self._ended({"ended": self._depth == 0})

    def _begin_call(self) -> Any:
        if self.id is not None and self._parent is None:
            raise InvalidInput("transaction(): this transaction was begun already", client_side=True)
        payload = self._payload
        if payload is None:  # a savepoint: in a scope that is still open
            assert self._parent is not None
            payload = tx_id_payload(self._parent._check_open("transaction()"))
        return self._client._tx_call("tx_begin", payload, self._timeout_ms)

    def _end_call(self, commit: bool) -> Any:
        what = "commit()" if commit else "rollback()"
        self._check_innermost(what)
        return self._client._tx_call("tx_commit" if commit else "tx_rollback",
                                     tx_id_payload(self._check_open(what)), self._timeout_ms)

    def _kw(self, what: str, kw: dict[str, Any]) -> dict[str, Any]:
        if "tx_id" in kw or kw.get("db_alias", self.db_alias) != self.db_alias:
            raise InvalidInput(f"{what}: tx_id and db_alias are the transaction's", client_side=True)
        kw["tx_id"] = self._check_open(what)
        kw["db_alias"] = self.db_alias
        return kw


class Transaction(_Scope):
    """A transaction of a MoltClient (``with client.transaction() as tx``),
    or a savepoint in one (``with tx.transaction()``)."""

    def __enter__(self) -> "Transaction":
        self._began(self._client._call(self._begin_call()))
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._done or self._root._done:
            return
        if exc_type is None:
            self.commit()
            return
        try:
            self.rollback()
        except MoltError:
            pass  # the block's exception says more; the worker rolls back anyway

    def commit(self) -> None:
        """Commit the transaction (a savepoint: release it)."""
        self._end(True)

    def rollback(self) -> None:
        """Roll the transaction back (a savepoint: roll back to it)."""
        self._end(False)

    def _end(self, commit: bool) -> None:
        call = self._end_call(commit)
        try:
            doc = self._client._call(call)
        except MoltError as e:
            self._end_failed(e)
            raise
        self._ended(doc)

    def transaction(self) -> "Transaction":
        """A savepoint: ``with tx.transaction():``."""
        return Transaction(self._client, self, None, None, False, False, self._timeout_ms)

    def query(self, sql: str, params: Any = None, **kw: Any) -> "QueryResult":
        """``client.query`` in this transaction."""
        result: QueryResult = self._client.query(sql, params, **self._kw("query()", kw))
        return result

    def execute(self, sql: Optional[str] = None, params: Any = None, **kw: Any) -> "ExecResult":
        """``client.execute`` in this transaction (``statements`` too)."""
        result: ExecResult = self._client.execute(sql, params, **self._kw("execute()", kw))
        return result

    def executemany(self, sql: str, seq_of_params: Any, **kw: Any) -> int:
        n: int = self._client.executemany(sql, seq_of_params, **self._kw("executemany()", kw))
        return n

    def stream(self, sql: str, params: Any = None, **kw: Any) -> "QueryStream":
        """``client.stream`` in this transaction; the transaction runs
        nothing else until the stream is read or closed."""
        stream: QueryStream = self._client.stream(sql, params, **self._kw("stream()", kw))
        return stream


class AsyncTransaction(_Scope):
    """A transaction of an AsyncMoltClient (``async with aclient.transaction()
    as tx``), or a savepoint in one (``async with tx.transaction()``)."""

    async def __aenter__(self) -> "AsyncTransaction":
        self._began(await self._client._call(self._begin_call()))
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._done or self._root._done:
            return
        if exc_type is None:
            await self.commit()
            return
        try:
            await self.rollback()
        except MoltError:
            pass

    async def commit(self) -> None:
        await self._end(True)

    async def rollback(self) -> None:
        await self._end(False)

    async def _end(self, commit: bool) -> None:
        call = self._end_call(commit)
        try:
            doc = await self._client._call(call)
        except MoltError as e:
            self._end_failed(e)
            raise
        self._ended(doc)

    def transaction(self) -> "AsyncTransaction":
        return AsyncTransaction(self._client, self, None, None, False, False, self._timeout_ms)

    async def query(self, sql: str, params: Any = None, **kw: Any) -> "QueryResult":
        result: QueryResult = await self._client.query(sql, params, **self._kw("query()", kw))
        return result

    async def execute(self, sql: Optional[str] = None, params: Any = None, **kw: Any) -> "ExecResult":
        result: ExecResult = await self._client.execute(sql, params, **self._kw("execute()", kw))
        return result

    async def executemany(self, sql: str, seq_of_params: Any, **kw: Any) -> int:
        n: int = await self._client.executemany(sql, seq_of_params, **self._kw("executemany()", kw))
        return n

    def stream(self, sql: str, params: Any = None, **kw: Any) -> "AsyncQueryStream":
        stream: AsyncQueryStream = self._client.stream(sql, params, **self._kw("stream()", kw))
        return stream

