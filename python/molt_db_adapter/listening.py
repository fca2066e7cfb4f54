"""LISTEN/NOTIFY through the worker's listen entry (docs/ipc-contract.md
section 10): the call, what a listener's frames mean (``ListenState``, no
I/O), and the listener objects of the two clients.

A listener is one request that stays open: the worker answers
``{"kind": "listening"}`` once its LISTENs are in place (from then on every
committed NOTIFY arrives), then one part per note. Closing the listener
cancels the request; the worker UNLISTENs what nobody else listens to.

Notes wait in the client until they are read: a listener nobody reads holds
them in the client's memory (the worker's per-listener bound applies when
the client stops reading its connection altogether).
"""

from __future__ import annotations

import asyncio
import queue
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

from .calls import Call, ConnectionLost, lost_error, raise_for
from .envelope import Response, unpackb
from .errors import InvalidInput, ProtocolError, Timeout

if TYPE_CHECKING:  # pragma: no cover
    from .async_client import AsyncMoltClient
    from .sync_client import MoltClient

__all__ = ["Notification", "listen_call", "ListenState", "Listener", "AsyncListener"]

#: the worker refuses a longer channel (PostgreSQL's NAMEDATALEN - 1)
MAX_CHANNEL_BYTES = 63
#: how long "wait for the next note" waits when the caller gives no timeout
FOREVER_S = 365 * 86400.0


@dataclass(frozen=True)
class Notification:
    """One NOTIFY: the channel, the payload text and the pid of the server
    process that sent it."""

    channel: str
    payload: str
    pid: int


def listen_call(channels: Sequence[str], *, db_alias: str) -> Call:
    """The listen request for ``channels``, exact names ("Jobs" is not
    "jobs"); InvalidInput for names the worker would refuse."""
    if not channels:
        raise InvalidInput("listen(): give one or more channel names", client_side=True)
    for c in channels:
        if not isinstance(c, str) or not c or "\0" in c or len(c.encode("utf-8")) > MAX_CHANNEL_BYTES:
            raise InvalidInput(f"listen(): channel {c!r} must be a str of 1 to 63 bytes without NUL",
                               client_side=True)
    if len(set(channels)) != len(channels):
        raise InvalidInput("listen(): a channel is given twice", client_side=True)
    return Call("listen", {"db_alias": db_alias, "channels": list(channels)}, None, False, "listen")


class ListenState:
    """What the frames of one listen request say. ``dropped`` counts notes
    the worker dropped because this client read too slowly; ``reconnects``
    the times the worker's listening connection was replaced (notes sent
    meanwhile are lost)."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.channels = list(call.payload["channels"]) if call.payload else []
        self.listening = False
        self.done = False
        self.dropped = 0
        self.reconnects = 0

    def on_item(self, item: Any) -> Optional[Notification]:
        """One frame (or the lost connection): its note, or None for the
        other parts. A final frame raises its error (the listener is over)."""
        if isinstance(item, ConnectionLost):
            self.done = True
            raise lost_error(self.call, item, 0) from None
        assert isinstance(item, Response)
        if not item.more:
            self.done = True
            raise_for(item)
            raise ProtocolError("listen: the worker ended the listener with Ok")
        doc = unpackb(item.payload)
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind == "note":
            return Notification(doc["channel"], doc["payload"], doc["pid"])
        if kind == "listening":
            self.listening = True
        elif kind == "dropped":
            self.dropped += int(doc.get("count", 0))
        elif kind == "reconnected":
            self.reconnects += 1
        else:
            raise ProtocolError(f"listen: a part it does not know: {doc!r}")
        return None

    def not_confirmed(self, wait: float) -> Timeout:
        return Timeout(f"the worker did not confirm the LISTEN within {wait:.3f} s; a cancel was "
                       "sent", client_side=True)


class Listener:
    """MoltClient.listen: ``get(timeout)`` gives the next Notification or
    None; iterating gives notes until ``timeout`` seconds pass without one
    (None: for ever). ``close()`` (or leaving a ``with`` block) stops it."""

    def __init__(self, client: "MoltClient", call: Call, timeout: Optional[float]) -> None:
        self._client = client
        self._state = ListenState(call)
        self.timeout = timeout
        self.request_id: Optional[int] = None
        self._conn: Any = None
        self._q: Any = None

    @property
    def dropped(self) -> int:
        return self._state.dropped

    @property
    def reconnects(self) -> int:
        return self._state.reconnects

    @property
    def channels(self) -> list[str]:
        return self._state.channels

    def _open(self) -> "Listener":
        try:
            self._conn, self.request_id, self._q, _ = self._client._start(self._state.call, 0)
        except ConnectionLost as e:
            raise lost_error(self._state.call, e, 0) from None
        wait = self._state.call.wait_seconds(self._client.grace_ms, self._client.client_timeout_s)
        deadline = time.monotonic() + wait
        while not self._state.listening:
            item = self._take(deadline)
            if item is None:
                self.close()
                raise self._state.not_confirmed(wait)
            self._state.on_item(item)
        return self

    def _take(self, deadline: float) -> Any:
        try:
            return self._q.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None
        except BaseException:
            self.close()
            raise

    def get(self, timeout: Optional[float] = None) -> Optional[Notification]:
        """The next note, or None after ``timeout`` seconds without one."""
        if self._state.done:
            raise InvalidInput("this listener is closed", client_side=True)
        deadline = time.monotonic() + (FOREVER_S if timeout is None else timeout)
        while True:
            item = self._take(deadline)
            if item is None:
                return None
            note = self._state.on_item(item)
            if note is not None:
                return note

    def __iter__(self) -> Iterator[Notification]:
        while not self._state.done:
            note = self.get(self.timeout)
            if note is None:
                return
            yield note

    def close(self) -> None:
        if not self._state.done:
            self._state.done = True
            if self.request_id is not None:
                self._conn.unregister(self.request_id)
                self._client._send_cancel(self._conn, self.request_id)

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncListener:
    """AsyncMoltClient.listen: ``async for note in listener`` (opens it on
    the first note; ends after ``timeout`` seconds without one, None: never),
    ``await listener.get(timeout)``; ``async with`` opens it and closes it on
    exit, which a bare ``async for`` left by ``break`` does not."""

    def __init__(self, client: "AsyncMoltClient", call: Call, timeout: Optional[float]) -> None:
        self._client = client
        self._state = ListenState(call)
        self.timeout = timeout
        self.request_id: Optional[int] = None
        self._conn: Any = None
        self._p: Any = None

    @property
    def dropped(self) -> int:
        return self._state.dropped

    @property
    def reconnects(self) -> int:
        return self._state.reconnects

    @property
    def channels(self) -> list[str]:
        return self._state.channels

    async def open(self) -> "AsyncListener":
        """Send the listen request and wait for "listening" (done once)."""
        if self.request_id is not None:
            return self
        try:
            self._conn, self.request_id, self._p, _ = await self._client._start(self._state.call, 0)
        except ConnectionLost as e:
            raise lost_error(self._state.call, e, 0) from None
        wait = self._state.call.wait_seconds(self._client.grace_ms, self._client.client_timeout_s)
        deadline = time.monotonic() + wait
        while not self._state.listening:
            item = await self._take(deadline)
            if item is None:
                self.close()
                raise self._state.not_confirmed(wait)
            self._state.on_item(item)
        return self

    async def _take(self, deadline: float) -> Any:
        try:
            return await self._p.get(max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            return None
        except BaseException:
            self.close()
            raise

    async def get(self, timeout: Optional[float] = None) -> Optional[Notification]:
        """The next note, or None after ``timeout`` seconds without one."""
        await self.open()
        if self._state.done:
            raise InvalidInput("this listener is closed", client_side=True)
        deadline = time.monotonic() + (FOREVER_S if timeout is None else timeout)
        while True:
            item = await self._take(deadline)
            if item is None:
                return None
            note = self._state.on_item(item)
            if note is not None:
                return note

    def __aiter__(self) -> "AsyncListener":
        return self

    async def __anext__(self) -> Notification:
        if self._state.done:
            raise StopAsyncIteration
        note = await self.get(self.timeout)
        if note is None:
            self.close()
            raise StopAsyncIteration
        return note

    def close(self) -> None:
        if not self._state.done:
            self._state.done = True
            if self.request_id is not None:
                self._conn.unregister(self.request_id)
                self._client._send_cancel(self._conn, self.request_id)

    async def __aenter__(self) -> "AsyncListener":
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        self.close()
