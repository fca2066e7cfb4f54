"""What the sync and async clients share: the description of one call, the
hooks, and turning a final frame into a result or an exception."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import c_rows
from .decoding import DEFAULT_DECODING, Decoding, convert_row
from .envelope import Response, unpackb
from .errors import MoltError, ProtocolError, error_for_status
from .results import ExecResult, QueryResult, decode_payload

__all__ = ["Call", "RequestInfo", "ResponseInfo", "BeforeSend", "AfterRecv", "finish", "ConnectionLost"]

#: the worker's default deadline (contract section 3), used for the client
#: side wait when a call gives none
WORKER_DEFAULT_TIMEOUT_MS = 30_000
#: how long past the worker's deadline the client still waits for the final
#: frame (the contract promises T + 100 ms)
DEFAULT_GRACE_MS = 1_000


@dataclass
class Call:
    entry: str
    payload: Optional[dict[str, Any]]
    timeout_ms: Optional[int]
    idempotent: bool
    kind: str  # query, exec, ping, stats, cancel
    stream: bool = False
    decoding: Decoding = DEFAULT_DECODING

    @property
    def sql(self) -> Optional[str]:
        return None if self.payload is None else self.payload.get("sql")

    @property
    def db_alias(self) -> Optional[str]:
        return None if self.payload is None else self.payload.get("db_alias")

    @property
    def tag(self) -> Optional[str]:
        return None if self.payload is None else self.payload.get("tag")

    def wait_seconds(self, grace_ms: int, client_timeout_s: Optional[float]) -> float:
        worker = self.timeout_ms or WORKER_DEFAULT_TIMEOUT_MS
        wait = (worker + grace_ms) / 1000.0
        if client_timeout_s is not None:
            wait = min(wait, client_timeout_s)
        return wait


@dataclass
class RequestInfo:
    """Given to ``before_send`` and ``after_recv`` hooks."""

    request_id: int
    entry: str
    db_alias: Optional[str]
    tag: Optional[str]
    sql: Optional[str]
    attempt: int
    sent_at: float = field(default_factory=time.monotonic)


@dataclass
class ResponseInfo:
    """Given to ``after_recv``: the final status, the worker's metrics, the
    time from send to final frame and the payload size."""

    status: str
    metrics: dict[str, Any]
    elapsed_s: float
    payload_bytes: int


BeforeSend = Callable[[RequestInfo], None]
AfterRecv = Callable[[RequestInfo, ResponseInfo], None]


class ConnectionLost(Exception):
    """Internal: the connection to the worker ended while a call waited."""

    def __init__(self, reason: str, start_error: Optional[str] = None, exit_status: int = 0,
                 sent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        #: the worker's stderr when it exited before answering anything
        self.start_error = start_error
        self.exit_status = exit_status
        #: False: found before the request left (it never ran; any call
        #: may be sent again)
        self.sent = sent

    def resendable(self) -> bool:
        """A worker that never started would fail the same way again."""
        return self.start_error is None


def raise_for(resp: Response) -> None:
    if resp.status == "Ok":
        return
    raise error_for_status(
        resp.status,
        resp.error or f"the worker answered {resp.status}",
        request_id=resp.request_id,
        sqlstate=resp.sqlstate,
        detail=resp.error_detail,
        metrics=resp.metrics,
    )


def finish(call: Call, resp: Response) -> Any:
    """The result of a final frame, or the exception its status names."""
    raise_for(resp)
    return finish_ok(call, resp.request_id, resp.codec, resp.payload, resp.metrics)


def finish_ok(call: Call, request_id: int, codec: Optional[str], payload: Any,
              metrics: dict[str, Any]) -> Any:
    """The result of an Ok final frame, from its parts."""
    return result_of(call.kind, call.decoding, request_id, codec, payload, metrics)


def result_of(kind: str, decoding: Decoding, request_id: int, codec: Optional[str], payload: Any,
              metrics: dict[str, Any]) -> Any:
    """finish_ok for a call of ``kind`` decoded as ``decoding`` (the
    in-process client's C caller gives these without a Call)."""
    if kind == "query":
        if codec not in ("json", "msgpack", "arrow_ipc"):
            raise ProtocolError(f"db_query answered with codec {codec!r}")
        return QueryResult(codec, payload, metrics, request_id, decoding)
    codec = codec or "msgpack"
    doc = decode_payload(codec, payload) if payload else {}
    if kind == "exec":
        if not isinstance(doc, dict):
            raise ProtocolError("db_exec answered with a payload that is not a map")
        return ExecResult(doc, codec, payload, metrics, request_id, decoding)
    return doc


def stream_part_rows(stream: Any, raw: bytes, dicts: bool = False) -> list[Any]:
    """The rows of one streamed json/msgpack part, decoded as the call
    says, as tuples or dicts; the part that carries them sets
    ``stream.columns`` and ``.types``."""
    if stream.codec == "msgpack" and stream.types is not None:
        dec = stream._call.decoding
        doc = c_rows.decode(raw, stream.types, numeric_decimal=dec.numeric == "decimal", parse_json=dec.json,
                            columns=stream.columns, dicts=dicts)
        if doc is not None and "columns" not in doc:
            return list(doc.get("rows", ()))
    part = decode_payload(stream.codec, raw)
    if not isinstance(part, dict):
        raise ProtocolError("a streamed part is not a map")
    if "columns" in part:
        stream.columns = list(part["columns"])
        stream.types = list(part.get("types", []))
    rows = [tuple(r) if not isinstance(r, dict) else tuple(r.values()) for r in part.get("rows", ())]
    convs = stream._call.decoding.converters(stream.types or [], stream.codec)
    if convs is not None:
        rows = [convert_row(r, convs) for r in rows]
    if dicts:
        cols = stream.columns or []
        return [dict(zip(cols, r)) for r in rows]
    return rows


def lost_error(call: Call, lost: ConnectionLost, resent: int) -> MoltError:
    from .errors import WorkerStartError, WorkerUnavailable

    if lost.start_error is not None:
        return WorkerStartError(lost.start_error, lost.exit_status)
    reason = lost.reason
    if call.idempotent:
        msg = f"the worker went away ({reason}); the request was resent {resent} time(s) and failed"
    else:
        msg = (
            f"the worker went away while the request was in flight ({reason}); it was not "
            "resent because it is not marked idempotent (it may or may not have run)"
        )
    return WorkerUnavailable(msg)


__all__ += ["finish_ok", "result_of", "raise_for", "lost_error", "stream_part_rows", "unpackb", "WORKER_DEFAULT_TIMEOUT_MS", "DEFAULT_GRACE_MS"]
