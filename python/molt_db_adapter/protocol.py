"""The protocol core that both clients drive, without I/O.

Two parts:

- ``Exchange``: one connection's request/response state. Bytes that arrive
  go in (``received``); each complete response frame goes to the slot of
  its request_id; when the connection ends, every waiting slot gets a
  ``ConnectionLost``. The clients' connection classes add the transport
  (pipes or a socket; threads or asyncio) on top of it.
- the steps of a call: generators that hold a request's whole life (choose
  a connection, allocate an id, send, wait with a deadline, cancel on
  timeout or interruption, resend after a worker death, turn the final
  frame into a result). They do no I/O themselves: they yield a ``Step``
  (``CONNECT``, ``Send``, ``Wait``, ``Explain``) and the client's driver —
  ``MoltClient._run`` with blocking calls, ``AsyncMoltClient._run`` with
  awaits — performs it and sends back the outcome (or throws the exception
  the I/O raised). For the commonest flow, one request and one final
  frame, both clients make the same calls inline (their ``_call``:
  ``open_request``, send, wait, ``answer``, ``next_attempt``,
  ``finish``): a generator and a step object per step would be most of
  their own cost per call.

A new request kind is a ``Call`` built in client_base.py, and, when its
flow is not "one request, one final frame", a steps generator here; both
clients then run it through their unchanged drivers.
"""

from __future__ import annotations

import threading
import time
from typing import IO, Any, Generator, Optional, Protocol, TypeVar, Union

from .calls import (
    Call,
    ConnectionLost,
    RequestInfo,
    finish,
    lost_error,
    raise_for,
    stream_part_rows,
)
from .envelope import Response, decode_response, encode_envelope, encode_request
from .errors import InvalidInput, Timeout
from .flow import PASSIVE, RESUME, STREAM, WAITS, StreamFlow
from .framing import FrameDecoder, encode_frame
from .worker_stderr import StderrTap

__all__ = [
    "Exchange", "Slot", "Item", "Request", "Step", "Steps", "CONNECT", "Send", "Wait", "Explain",
    "call_steps", "open_stream_steps", "StreamCore", "exit_reason", "open_request", "timed_out",
    "cancel", "answer", "next_attempt",
]

#: what a slot receives: a response frame, or the end of the connection
Item = Union[Response, ConnectionLost]
T = TypeVar("T")


def exit_reason(code: Optional[int]) -> str:
    if code is None:
        return "the worker closed its output"
    if code < 0:
        return f"the worker was killed by signal {-code}"
    return f"the worker exited with status {code}"


class Slot(Protocol):
    """Where the frames of one request wait for their reader (a queue for
    the blocking client, a future-backed deque for asyncio)."""

    def put(self, item: Item) -> None: ...


class Exchange:
    """One connection's request/response state, without I/O.

    ``pending`` maps request_id to the slot of a request still waiting; the
    lock guards it against the blocking client's reader thread (uncontended
    under asyncio). ``new_slot`` is the one thing a subclass must give;
    ``flow_changed`` is how a transport stops and resumes taking frames
    for its streams' flow control (flow.py)."""

    #: a send may have to wait for room (a worker's pipe or socket); the
    #: in-process host takes a request at once (``send_envelope``)
    send_waits = True

    def __init__(self, max_response: int, stderr: Union[int, IO[Any], None]) -> None:
        self.decoder = FrameDecoder(max_response)
        self.stderr_tap = StderrTap(stderr)
        self.pending: dict[int, Slot] = {}
        self.lock = threading.Lock()
        self.flow = StreamFlow()  # under self.lock
        self.dead: Optional[str] = None  # why the connection ended
        self.answered = False  # some frame arrived: the worker started
        self.start_error: Optional[str] = None
        self.exit_status = 0

    def new_slot(self) -> Slot:
        raise NotImplementedError

    def lost(self, reason: str, sent: bool = True) -> ConnectionLost:
        """The ConnectionLost for ``reason`` (``sent``: False when the
        request it stops has not left)."""
        return ConnectionLost(reason, self.start_error, self.exit_status, sent)

    def register(self, rid: int, kind: int = WAITS) -> Slot:
        """A slot for request ``rid``'s frames; ``kind`` (flow.py): how they
        count in the streams' flow control."""
        slot = self.new_slot()
        with self.lock:
            if self.dead:
                raise self.lost(self.dead, sent=False)
            self.pending[rid] = slot
            if kind != WAITS:
                self.flow.opened(rid, kind)
            # one more request waiting: frames may flow again
            change = self.flow.update(self.waiting()) if self.flow.stopped else 0
        self.pass_on(change)
        return slot

    def unregister(self, rid: int) -> None:
        with self.lock:
            self.pending.pop(rid, None)
            self.flow.forget(rid)
            change = self.flow.update(self.waiting()) if self.flow.full or self.flow.stopped else 0
        self.pass_on(change)

    def consumed(self, rid: int, n: int) -> None:
        """Stream ``rid``'s reader took a part of ``n`` payload bytes."""
        if rid not in self.flow.unread:
            return
        with self.lock:
            change = self.flow.update(self.waiting()) if self.flow.taken(rid, n) else 0
        self.pass_on(change)

    def waiting(self) -> int:
        """Under the lock: the requests waiting for frames."""
        return len(self.pending)

    def reflow(self) -> None:
        """After the requests waiting changed in a way ``register`` and
        ``deliver`` do not see (the in-process fast calls): stop or resume."""
        if not (self.flow.full or self.flow.stopped):
            return
        with self.lock:
            change = self.flow.update(self.waiting())
        self.pass_on(change)

    def pass_on(self, change: int) -> None:
        """Called without the lock with what ``flow.update`` returned under
        it: tell the transport when taking frames stops or resumes."""
        if change:
            self.flow_changed(change == RESUME)

    def flow_changed(self, resume: bool) -> None:
        """Called without the lock when taking frames should stop (``resume``
        False) or resume: the transport's part of the flow control."""

    def flow_off(self) -> None:
        """The connection is closing: frames flow until its end."""
        with self.lock:
            self.flow.close()
            change = self.flow.update(self.waiting())
        self.pass_on(change)

    def received(self, data: bytes) -> None:
        """Route every complete frame in ``data`` (with what came before) to
        its request. ProtocolError: the stream is out of sync for good.
        Frames for unknown ids (answers to cancels, or to requests whose
        caller gave up) are dropped."""
        for body in self.decoder.feed(data):
            self.deliver(body)

    def deliver(self, body: bytes, request_id: int = 0) -> Response:
        """Route one response frame (without its length prefix) to its
        request; dropped when nobody waits for it. ``request_id``: whose
        answer it is when the frame names none (the in-process host answers
        a request it could not read on that request's own stream)."""
        self.answered = True
        resp = decode_response(body)
        if resp.request_id == 0 and request_id:
            resp.request_id = request_id
        change = 0
        with self.lock:
            slot = self.pending.get(resp.request_id)
            if slot is not None:
                flow = self.flow
                if not resp.more:
                    del self.pending[resp.request_id]
                    flow.forget(resp.request_id)
                    if flow.full or flow.stopped:
                        change = flow.update(self.waiting())
                elif flow.arrived(resp.request_id, len(resp.payload)):
                    change = flow.update(self.waiting())
        if slot is not None:
            slot.put(resp)
        self.pass_on(change)
        return resp

    def end_reason(self, exc: Optional[BaseException]) -> str:
        """Why reading stopped: a read error, or the other side closing."""
        if exc is not None:
            return f"reading from the worker failed: {exc}"
        if self.decoder.pending_bytes:
            return "the worker closed the connection in the middle of a frame"
        return "the worker closed the connection"

    def exited(self, code: int) -> str:
        """Record a spawned worker's exit status; the reason it gives."""
        self.exit_status = code
        self.start_error = self.stderr_tap.start_error(code, self.answered)
        return exit_reason(code)

    def fail(self, reason: str) -> None:
        """The connection is over: every waiting request learns why."""
        with self.lock:
            if self.dead is None:
                self.dead = reason
            waiting = list(self.pending.values())
            self.pending.clear()
            self.flow.close()
            change = self.flow.update(0)
        for slot in waiting:
            slot.put(self.lost(reason))
        if change:
            self.flow_changed(True)

    def send_nowait(self, frame: bytes) -> None:
        """Send without waiting for room (cancels); ConnectionLost when the
        connection is over."""
        raise NotImplementedError

    def send_envelope(self, rid: int, body: bytes) -> None:
        """send_nowait of request ``rid``'s envelope (``body``, unframed);
        the in-process exchange submits it as it is."""
        self.send_nowait(encode_frame(body))

    def settle(self, rid: int, within: float) -> None:
        """After a cancel of ``rid`` was sent: make sure it takes effect.
        Nothing to do where something else runs the I/O (a worker, a
        reader thread, an event loop); the blocking in-process exchange
        drives its host until the request ended."""


class Request:
    """One request on the wire: its connection, id, slot and hook info."""

    __slots__ = ("conn", "rid", "slot", "info")

    def __init__(self, conn: Exchange, rid: int, slot: Slot, info: Optional[RequestInfo]) -> None:
        self.conn = conn
        self.rid = rid
        #: the driver's own slot type (a queue, a _Pending), read by its Wait
        self.slot: Any = slot
        self.info = info


# ---- steps: what a call asks its driver to do ----

class _Connect:
    """Give a live connection (starting the worker or connecting the socket
    when there is none). Outcome: an Exchange."""

    __slots__ = ()


CONNECT = _Connect()


class Send:
    """Write a frame, waiting for room when the transport is full.
    Outcome: None; ConnectionLost when the connection is over."""

    __slots__ = ("conn", "frame")

    def __init__(self, conn: Exchange, frame: bytes) -> None:
        self.conn = conn
        self.frame = frame


class Wait:
    """Wait up to ``timeout`` seconds for the next item of a request's slot.
    Outcome: the item, or None when the time ran out."""

    __slots__ = ("req", "timeout")

    def __init__(self, req: Request, timeout: float) -> None:
        self.req = req
        self.timeout = timeout


class Explain:
    """Outcome: ``lost`` told whether the worker never started (the asyncio
    client may learn the exit status only after a failed write)."""

    __slots__ = ("lost",)

    def __init__(self, lost: ConnectionLost) -> None:
        self.lost = lost


Step = Union[_Connect, Send, Wait, Explain]
Steps = Generator[Step, Any, T]


class _Caller(Protocol):
    """What the steps read from a client (ClientBase has all of it)."""

    grace_ms: int
    client_timeout_s: Optional[float]
    max_restarts: int

    def _new_id(self) -> int: ...

    def _request_info(self, call: Call, rid: int, attempt: int) -> Optional[RequestInfo]: ...

    def _after_recv(self, info: Optional[RequestInfo], resp: Response) -> None: ...


def cancel(client: _Caller, req: Request) -> None:
    """Stop waiting for ``req`` and ask the worker to stop it."""
    req.conn.unregister(req.rid)
    try:
        req.conn.send_nowait(encode_request(client._new_id(), "cancel", {"request_id": req.rid}))
    except ConnectionLost:
        return
    req.conn.settle(req.rid, client.grace_ms / 1000.0)


def open_request(client: _Caller, conn: Exchange, call: Call, attempt: int) -> tuple[Request, bytes]:
    """A new request of ``call`` on ``conn`` (its id, the before_send hook,
    its slot registered) and its envelope, still to be sent."""
    rid = client._new_id()
    body = encode_envelope(rid, call.entry, call.payload, call.timeout_ms)
    info = client._request_info(call, rid, attempt)
    kind = STREAM if call.stream else PASSIVE if call.kind == "listen" else WAITS
    req = Request(conn, rid, conn.register(rid, kind), info)
    if info is not None:
        info.sent_at = time.monotonic()
    return req, body


def timed_out(client: _Caller, req: Request, wait: float) -> Timeout:
    """No final frame within ``wait`` seconds: cancel ``req``; the error."""
    cancel(client, req)
    return Timeout(
        f"no answer from the worker within {wait:.3f} s (client-side timeout); a cancel was sent",
        request_id=req.rid,
        client_side=True,
    )


def _start(client: _Caller, call: Call, attempt: int) -> Steps[Request]:
    conn: Exchange = yield CONNECT
    req, body = open_request(client, conn, call, attempt)
    try:
        yield Send(conn, encode_frame(body))
    except ConnectionLost:
        raise
    except BaseException:  # interrupted while sending: the frame may have left
        cancel(client, req)
        raise
    return req


def _next_response(client: _Caller, req: Request, deadline: float, wait: float) -> Steps[Response]:
    """The next frame of ``req``; Timeout (and a cancel sent) at ``deadline``."""
    try:
        item: Optional[Item] = yield Wait(req, max(0.0, deadline - time.monotonic()))
    except BaseException:  # interrupted (KeyboardInterrupt, task cancelled): stop the query
        cancel(client, req)
        raise
    return answer(client, req, item, wait)


def answer(client: _Caller, req: Request, item: Optional[Item], wait: float) -> Response:
    """What a wait for ``req`` gave, as a frame: Timeout (and a cancel
    sent) when it ran out, ConnectionLost when the connection ended."""
    if item is None:
        raise timed_out(client, req, wait)
    if isinstance(item, ConnectionLost):
        raise item
    return item


def next_attempt(client: _Caller, call: Call, lost: ConnectionLost, attempt: int) -> int:
    """After ``lost`` ended attempt ``attempt``: the next one when the call
    may be resent, else its error is raised."""
    if (call.idempotent or not lost.sent) and attempt < client.max_restarts and lost.resendable():
        return attempt + 1
    raise lost_error(call, lost, attempt) from None


def call_steps(client: _Caller, call: Call) -> Steps[Any]:
    """One call that ends in one final frame: its result, or the exception
    the frame names. An idempotent call is resent after a worker death, up
    to ``max_restarts`` times."""
    attempt = 0
    wait = call.wait_seconds(client.grace_ms, client.client_timeout_s)
    while True:
        try:
            req = yield from _start(client, call, attempt)
            resp = yield from _next_response(client, req, time.monotonic() + wait, wait)
        except ConnectionLost as lost:
            e: ConnectionLost = yield Explain(lost)
            attempt = next_attempt(client, call, e, attempt)
            continue
        client._after_recv(req.info, resp)
        return finish(call, resp)


def open_stream_steps(client: _Caller, call: Call) -> Steps[Request]:
    """Send a streamed call (never resent once it left: rows may have been
    read)."""
    attempt = 0
    while True:
        try:
            return (yield from _start(client, call, attempt))
        except ConnectionLost as lost:
            e: ConnectionLost = yield Explain(lost)
            if e.sent:
                raise lost_error(call, e, attempt) from None
            attempt = next_attempt(client, call, e, attempt)


class StreamCore:
    """The state of one streamed db_query, read frame by frame; the clients'
    stream classes drive ``next_frame_steps`` and add iteration."""

    def __init__(self, client: _Caller, call: Call, req: Request) -> None:
        self._client = client
        self._call = call
        self._req = req
        self.request_id = req.rid
        self.codec: str = call.payload["result_format"] if call.payload else "msgpack"
        self.columns: Optional[list[str]] = None
        self.types: Optional[list[str]] = None
        self.metrics: dict[str, Any] = {}
        self.done = False
        self._wait = call.wait_seconds(client.grace_ms, client.client_timeout_s)
        self._deadline = time.monotonic() + self._wait

    def close(self) -> None:
        """Stop reading; a query still running is cancelled."""
        if not self.done:
            self.done = True
            cancel(self._client, self._req)

    def next_frame_steps(self) -> Steps[Optional[Response]]:
        """The next frame with a payload, or None when the stream is over."""
        if self.done:
            return None
        try:
            resp = yield from _next_response(self._client, self._req, self._deadline, self._wait)
        except ConnectionLost as e:
            self.done = True
            raise lost_error(self._call, e, 0) from None
        except BaseException:
            self.done = True
            raise
        if resp.more:
            self._req.conn.consumed(self.request_id, len(resp.payload))
            return resp
        self.done = True
        self.metrics = resp.metrics
        self._client._after_recv(self._req.info, resp)
        raise_for(resp)
        return resp if resp.payload else None

    def rows_of(self, raw: bytes) -> list[tuple[Any, ...]]:
        """The rows of one json/msgpack part."""
        return stream_part_rows(self, raw)

    def dicts_of(self, raw: bytes) -> list[dict[str, Any]]:
        """The rows of one json/msgpack part as dicts keyed by column name."""
        return stream_part_rows(self, raw, dicts=True)

    def check_rows(self) -> None:
        if self.codec == "arrow_ipc":
            raise InvalidInput("an arrow_ipc stream is read with chunks() or to_arrow()", client_side=True)

    def check_arrow(self) -> None:
        if self.codec != "arrow_ipc":
            raise InvalidInput("to_arrow() on a stream needs result_format='arrow_ipc'", client_side=True)
