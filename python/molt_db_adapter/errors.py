"""Exceptions: one class per response status of the IPC contract, plus
WorkerUnavailable for a worker that cannot be reached or died."""

from __future__ import annotations

from typing import Any, Mapping, Optional

__all__ = [
    "MoltError",
    "InvalidInput",
    "Busy",
    "Timeout",
    "Cancelled",
    "DbError",
    "ConnectionFailed",
    "InternalError",
    "WorkerUnavailable",
    "WorkerStartError",
    "ProtocolError",
    "error_for_status",
]


def _text(v: Any) -> Optional[str]:
    return v if isinstance(v, str) else None


class MoltError(Exception):
    """Base of every molt_db_adapter error.

    ``status`` is the contract's status string; ``request_id`` the request
    it answers (None when the error arose in the client); ``metrics`` the
    worker's metrics when the final frame carried them.
    """

    status = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        request_id: Optional[int] = None,
        sqlstate: Optional[str] = None,
        detail: Optional[Mapping[str, Any]] = None,
        metrics: Optional[Mapping[str, Any]] = None,
        client_side: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.sqlstate = sqlstate
        #: the contract's error_detail map as sent (DbError: the server's
        #: fields by their contract names); the typed attributes read it
        self.fields: dict[str, Any] = dict(detail or {})
        #: the server's DETAIL text (DbError), else None
        self.detail: Optional[str] = _text(self.fields.get("detail"))
        self.metrics: dict[str, Any] = dict(metrics or {})
        #: True when the client decided (bad arguments, client-side timeout)
        self.client_side = client_side

    def __str__(self) -> str:
        s = self.message
        if self.sqlstate:
            s += f" (SQLSTATE {self.sqlstate})"
        return s


class InvalidInput(MoltError, ValueError):
    """The request was rejected before the database saw it (by the worker,
    or by the client's own checks: ``client_side`` is then True)."""

    status = "InvalidInput"


class Busy(MoltError):
    """No database connection in time, the in-flight limit, or shutdown."""

    status = "Busy"


class Timeout(MoltError, TimeoutError):
    """The deadline passed; the query was cancelled on the server."""

    status = "Timeout"


class Cancelled(MoltError):
    """The request was cancelled (a cancel request or a cancelled task)."""

    status = "Cancelled"


class DbError(MoltError):
    """The database reported an error, with the server's fields as typed
    attributes (None when the server did not send one): ``sqlstate``,
    ``detail`` (the DETAIL text), ``hint``, ``position`` (int, 1-based
    character offset in the SQL), ``schema_name``, ``table_name``,
    ``column_name``, ``constraint_name``. ``fields`` keeps the contract's
    error_detail map as it arrived."""

    status = "DbError"

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        f = self.fields
        self.hint: Optional[str] = _text(f.get("hint"))
        pos = f.get("position")
        if isinstance(pos, str) and 0 < len(pos) <= 10 and pos.isascii() and pos.isdigit():
            pos = int(pos)
        self.position: Optional[int] = pos if isinstance(pos, int) and not isinstance(pos, bool) else None
        self.schema_name: Optional[str] = _text(f.get("schema"))
        self.table_name: Optional[str] = _text(f.get("table"))
        self.column_name: Optional[str] = _text(f.get("column"))
        self.constraint_name: Optional[str] = _text(f.get("constraint"))


class ConnectionFailed(DbError):
    """The worker cannot connect to the database: wrong password (SQLSTATE
    28P01), no pg_hba.conf entry (28000), unknown database (3D000), refused
    or unresolvable host (08001), connection lost while connecting (08006),
    too many connections (53300), server starting up (57P03). It arrives at
    the first failed attempt; until the worker's next attempt (spaced by its
    reconnect backoff) further calls fail the same way at once."""


#: SQLSTATEs only a connection attempt gives, besides classes 08 and 28
_CONNECT_SQLSTATES = frozenset(("3D000", "53300", "57P03"))


def _is_connect_sqlstate(sqlstate: Optional[str]) -> bool:
    if not sqlstate:
        return False
    return sqlstate[:2] in ("08", "28") or sqlstate in _CONNECT_SQLSTATES


class InternalError(MoltError):
    """Anything else the worker reported (connection lost mid-query, ...)."""

    status = "InternalError"


class ProtocolError(InternalError):
    """The worker sent something that breaks the contract (bad frame)."""


class WorkerUnavailable(MoltError):
    """The worker could not be started or reached, or it died while the
    request was in flight and the request was not (or no longer) resent."""

    status = "WorkerUnavailable"


class WorkerStartError(WorkerUnavailable):
    """The worker exited before answering anything: a bad command line or
    configuration (unknown option, bad DSN, missing ``--stdio``). ``stderr``
    holds what the worker wrote there (also the message); ``exit_status``
    its exit status. Not resent: starting again would fail the same way."""

    def __init__(self, stderr: str, exit_status: int) -> None:
        super().__init__(f"the worker could not start (exit status {exit_status}): {stderr}")
        self.stderr = stderr
        self.exit_status = exit_status


_BY_STATUS: dict[str, type[MoltError]] = {
    c.status: c for c in (InvalidInput, Busy, Timeout, Cancelled, DbError, InternalError)
}


def error_for_status(
    status: str,
    message: str,
    *,
    request_id: Optional[int] = None,
    sqlstate: Optional[str] = None,
    detail: Optional[Mapping[str, Any]] = None,
    metrics: Optional[Mapping[str, Any]] = None,
) -> MoltError:
    cls = _BY_STATUS.get(status)
    if cls is DbError and _is_connect_sqlstate(sqlstate):
        cls = ConnectionFailed
    if cls is None:
        return InternalError(
            f"the worker answered with unknown status {status!r}: {message}",
            request_id=request_id,
            metrics=metrics,
        )
    return cls(message, request_id=request_id, sqlstate=sqlstate, detail=detail, metrics=metrics)
