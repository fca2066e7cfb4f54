"""Request and response envelopes (contract sections 3 and 4), MsgPack
encoded, and the request payloads for db_query / db_exec (sections 5, 6)
and the transaction entries (section 11)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import msgpack

from .errors import InvalidInput, ProtocolError
from .framing import encode_frame
from .params import Params, encode_params

__all__ = [
    "Response",
    "encode_request",
    "encode_envelope",
    "decode_response",
    "query_payload",
    "exec_payload",
    "tx_begin_payload",
    "tx_id_payload",
    "RESULT_FORMATS",
]

RESULT_FORMATS = ("json", "msgpack", "arrow_ipc")
ENTRIES = ("db_query", "db_exec", "cancel", "ping", "stats", "tx_begin", "tx_commit", "tx_rollback",
           "listen", "copy_in", "copy_out")
_TAG = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


_local = threading.local()


def packb(obj: Any) -> bytes:
    # one Packer per thread: msgpack.packb builds a new one on every call
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    try:
        return packer.pack(obj)  # type: ignore[no-any-return]
    except BaseException:
        packer.reset()  # a failed pack may leave a partial buffer behind
        raise


def unpackb(data: bytes) -> Any:
    # timestamp=3: the MsgPack timestamp extension becomes an aware datetime (UTC)
    return msgpack.unpackb(data, raw=False, timestamp=3, strict_map_key=False)


def _bad(msg: str) -> InvalidInput:
    return InvalidInput(msg, client_side=True)


def encode_request(
    request_id: int,
    entry: str,
    payload: Optional[dict[str, Any]] = None,
    timeout_ms: Optional[int] = None,
) -> bytes:
    """One framed request."""
    return encode_frame(encode_envelope(request_id, entry, payload, timeout_ms))


def encode_envelope(
    request_id: int,
    entry: str,
    payload: Optional[dict[str, Any]] = None,
    timeout_ms: Optional[int] = None,
) -> bytes:
    """One request envelope, without the frame's length prefix (what the
    in-process host takes)."""
    if entry not in ENTRIES:
        raise _bad(f"unknown entry {entry!r}: use one of {', '.join(ENTRIES)}")
    if not 0 < request_id <= UINT64_MAX:
        raise _bad(f"request_id {request_id} is not a positive uint64")
    env: dict[str, Any] = {"request_id": request_id, "entry": entry}
    if payload is not None:
        env["payload"] = packb(payload)
        env["codec"] = "msgpack"
    if timeout_ms is not None:
        env["timeout_ms"] = timeout_ms
    return packb(env)


@dataclass
class Response:
    request_id: int
    status: str
    codec: Optional[str] = None
    payload: bytes = b""
    error: Optional[str] = None
    sqlstate: Optional[str] = None
    error_detail: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    more: bool = False


def decode_response(body: Any) -> Response:
    """``body``: a frame's bytes, or an owned frame of the in-process host
    (``_host.Frame``), whose arrow_ipc payload then stays in place: the
    Response's payload is a memoryview into it (docs/python.md)."""
    in_place = None
    if not isinstance(body, bytes):
        body, in_place = body.split()
    try:
        env = unpackb(body)
    except Exception as e:  # msgpack raises several types
        raise ProtocolError(f"the worker sent a frame that is not valid MsgPack: {e}") from None
    if not isinstance(env, dict):
        raise ProtocolError(f"the worker sent a {type(env).__name__} where a map was expected")
    rid = env.get("request_id")
    status = env.get("status")
    if not isinstance(rid, int) or isinstance(rid, bool) or not isinstance(status, str):
        raise ProtocolError("the worker sent a response without request_id or status")
    payload = env.get("payload", b"")
    if payload is None:
        payload = b""
    if not isinstance(payload, (bytes, bytearray)):
        raise ProtocolError(f"response {rid}: payload is a {type(payload).__name__}, not bin")
    detail = env.get("error_detail") or {}
    metrics = env.get("metrics") or {}
    return Response(
        request_id=rid,
        status=status,
        codec=env.get("codec"),
        payload=in_place if in_place is not None else payload if type(payload) is bytes else bytes(payload),
        error=env.get("error"),
        sqlstate=env.get("sqlstate"),
        error_detail=detail if isinstance(detail, dict) else {},
        metrics=metrics if isinstance(metrics, dict) else {},
        more=bool(env.get("more", False)),
    )


def check_timeout_ms(timeout_ms: Optional[int]) -> Optional[int]:
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or not 0 < timeout_ms <= UINT32_MAX:
        raise _bad(f"timeout_ms must be a positive int up to {UINT32_MAX}, got {timeout_ms!r}")
    return timeout_ms


def _common(
    sql: str,
    params: Params,
    db_alias: str,
    result_format: str,
    tag: Optional[str],
    allowed_formats: Sequence[str],
) -> dict[str, Any]:
    if not isinstance(sql, str) or not sql.strip():
        raise _bad("sql must be a non-empty str")
    if not isinstance(db_alias, str) or not db_alias:
        raise _bad(f"db_alias must be a non-empty str, got {db_alias!r}")
    if result_format not in allowed_formats:
        raise _bad(f"result_format {result_format!r} is not one of {', '.join(allowed_formats)}")
    p: dict[str, Any] = {"db_alias": db_alias, "sql": sql, "result_format": result_format}
    enc = encode_params(sql, params)
    if enc is not None:
        p["params"] = enc
    if tag is not None:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise _bad(f"tag {tag!r} must be 1 to 64 of A-Za-z0-9_.-")
        p["tag"] = tag
    return p


def _uint(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > UINT64_MAX:
        raise _bad(f"{name} must be a non-negative int, got {v!r}")
    return int(v)


def query_payload(
    sql: str,
    params: Params,
    *,
    db_alias: str,
    result_format: str,
    max_rows: Optional[int],
    tag: Optional[str],
    stream: bool = False,
    batch_rows: Optional[int] = None,
    row_shape: Optional[str] = None,
    tx_id: Optional[int] = None,
    pin_primary: bool = False,
) -> dict[str, Any]:
    p = _common(sql, params, db_alias, result_format, tag, RESULT_FORMATS)
    if tx_id is not None:
        p["tx_id"] = _uint("tx_id", tx_id)
    if pin_primary:
        p["pin_primary"] = True
    if max_rows is not None:
        p["max_rows"] = _uint("max_rows", max_rows)
    if stream:
        p["stream"] = True
        if batch_rows is not None:
            if _uint("batch_rows", batch_rows) == 0:
                raise _bad("batch_rows must be at least 1")
            p["batch_rows"] = batch_rows
    if row_shape is not None:
        if row_shape not in ("arrays", "objects"):
            raise _bad(f"row_shape {row_shape!r} is not 'arrays' or 'objects'")
        if row_shape == "objects" and result_format == "arrow_ipc":
            raise _bad("row_shape 'objects' works with json and msgpack, not arrow_ipc")
        p["row_shape"] = row_shape
    return p


ISOLATIONS = ("read_committed", "repeatable_read", "serializable")


def exec_payload(
    sql: Optional[str],
    params: Params,
    *,
    db_alias: str,
    result_format: str,
    tag: Optional[str],
    statements: Optional[Sequence[tuple[str, Params]]] = None,
    isolation: Optional[str] = None,
    tx_id: Optional[int] = None,
) -> dict[str, Any]:
    if statements is not None:
        if sql is not None:
            raise _bad("execute(): give either sql or statements, not both")
        if not statements:
            raise _bad("execute(): statements must not be empty")
        stmts = []
        first: dict[str, Any] = {}
        for i, st in enumerate(statements):
            if not isinstance(st, (tuple, list)) or len(st) != 2:
                raise _bad(f"statements[{i}] must be a (sql, params) pair")
            try:
                one = _common(st[0], st[1], db_alias, result_format, tag, ("json", "msgpack"))
            except InvalidInput as e:
                raise _bad(f"statements[{i}]: {e.message}") from None
            first = one
            stmts.append({k: v for k, v in one.items() if k in ("sql", "params")})
        p = {k: v for k, v in first.items() if k not in ("sql", "params")}
        p["statements"] = stmts
    else:
        if sql is None:
            raise _bad("execute() needs sql or statements")
        p = _common(sql, params, db_alias, result_format, tag, ("json", "msgpack"))
    p["allow_write"] = True
    if isolation is not None:
        p["isolation"] = _isolation(isolation)
    if tx_id is not None:
        p["tx_id"] = _uint("tx_id", tx_id)
    return p


def _isolation(isolation: Any) -> str:
    if isolation not in ISOLATIONS:
        raise _bad(f"isolation {isolation!r} is not one of {', '.join(ISOLATIONS)}")
    return str(isolation)


def tx_begin_payload(
    *, db_alias: str, isolation: Optional[str], read_only: bool, deferrable: bool,
) -> dict[str, Any]:
    """A tx_begin that opens a transaction (a savepoint: tx_id_payload)."""
    if not isinstance(db_alias, str) or not db_alias:
        raise _bad(f"db_alias must be a non-empty str, got {db_alias!r}")
    p: dict[str, Any] = {"db_alias": db_alias}
    if isolation is not None:
        p["isolation"] = _isolation(isolation)
    if not isinstance(read_only, bool) or not isinstance(deferrable, bool):
        raise _bad("read_only and deferrable must be bools")
    if read_only:
        p["read_only"] = True
    if deferrable:
        p["deferrable"] = True
    return p


def tx_id_payload(tx_id: int) -> dict[str, Any]:
    """tx_commit, tx_rollback, and a nested tx_begin (a savepoint)."""
    return {"tx_id": _uint("tx_id", tx_id)}
