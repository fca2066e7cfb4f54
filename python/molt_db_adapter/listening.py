"""LISTEN/NOTIFY through the worker's listen entry (docs/ipc-contract.md
section 12): the call, a listener's steps (``ListenCore``, no
I/O), and the listener objects of the two clients.

A listener is one request that stays open: the worker answers
``{"kind": "listening"}`` once its LISTENs are in place (from then on every
committed NOTIFY arrives), then one part per note. Closing the listener
cancels the request; the worker UNLISTENs what nobody else listens to.

Notes wait in the client until they are read: a listener nobody reads holds
them in the client's memory. The worker's per-listener bound applies when
the worker client stops reading its connection: while only full streams
and listeners wait on it (flow.py; a listener does not count as waiting).
The in-process clients hold back only the full streams' frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, Optional, Sequence

from .calls import Call, ConnectionLost, lost_error, raise_for
from .envelope import Response, unpackb
from .errors import InvalidInput, ProtocolError, Timeout
from .protocol import Explain, Item, Request, Steps, Wait, _start, cancel

if TYPE_CHECKING:  # pragma: no cover
    from .async_client import AsyncMoltClient
    from .sync_client import MoltClient

__all__ = ["Notification", "listen_call", "ListenCore", "Listener", "AsyncListener"]

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


class ListenCore:
    """One listener, without I/O: the steps that open it and read its notes
    (protocol.py's steps, performed by the client's driver). ``dropped``
    counts notes the worker dropped because this client read too slowly;
    ``reconnects`` the times the worker's listening connection was
    replaced (notes sent meanwhile are lost)."""

    def __init__(self, client: Any, call: Call, timeout: Optional[float]) -> None:
        self._client = client
        self.call = call
        self.timeout = timeout
        self.channels: list[str] = list(call.payload["channels"]) if call.payload else []
        self.listening = False
        self.done = False
        self.dropped = 0
        self.reconnects = 0
        self._req: Optional[Request] = None

    @property
    def request_id(self) -> Optional[int]:
        return None if self._req is None else self._req.rid

    def open_steps(self) -> Steps[None]:
        """Send the listen request and wait (the client's usual wait) for
        "listening"."""
        try:
            self._req = yield from _start(self._client, self.call, 0)
        except ConnectionLost as lost:
            e: ConnectionLost = yield Explain(lost)
            raise lost_error(self.call, e, 0) from None
        wait = self.call.wait_seconds(self._client.grace_ms, self._client.client_timeout_s)
        deadline = time.monotonic() + wait
        while not self.listening:
            item = yield from self._take(deadline)
            if item is None:
                self.close()
                raise Timeout(f"the worker did not confirm the LISTEN within {wait:.3f} s; a "
                              "cancel was sent", client_side=True)
            self.on_item(item)

    def next_steps(self, timeout: Optional[float]) -> Steps[Optional[Notification]]:
        """The next note, or None after ``timeout`` seconds without one
        (None: no end)."""
        if self.done:
            raise InvalidInput("this listener is closed", client_side=True)
        deadline = time.monotonic() + (FOREVER_S if timeout is None else timeout)
        while True:
            item = yield from self._take(deadline)
            if item is None:
                return None
            note = self.on_item(item)
            if note is not None:
                return note

    def _take(self, deadline: float) -> Steps[Optional[Item]]:
        assert self._req is not None
        try:
            item: Optional[Item] = yield Wait(self._req, max(0.0, deadline - time.monotonic()))
        except BaseException:  # interrupted: stop listening
            self.close()
            raise
        return item

    def close(self) -> None:
        """Stop listening (a cancel; the worker UNLISTENs what nobody else
        listens to)."""
        if not self.done:
            self.done = True
            if self._req is not None:
                cancel(self._client, self._req)

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


class Listener(ListenCore):
    """MoltClient.listen: ``get(timeout)`` gives the next Notification or
    None; iterating gives notes until ``timeout`` seconds pass without one
    (None: for ever). ``close()`` (or leaving a ``with`` block) stops it."""

    _client: "MoltClient"

    def get(self, timeout: Optional[float] = None) -> Optional[Notification]:
        """The next note, or None after ``timeout`` seconds without one."""
        note: Optional[Notification] = self._client._run(self.next_steps(timeout))
        return note

    def __iter__(self) -> Iterator[Notification]:
        while not self.done:
            note = self.get(self.timeout)
            if note is None:
                return
            yield note

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncListener(ListenCore):
    """AsyncMoltClient.listen: ``async for note in listener`` (LISTENs on
    the first read; ends after ``timeout`` seconds without a note, None:
    never), ``await listener.get(timeout)``; ``async with`` LISTENs on entry
    and stops on exit, which a bare ``async for`` left by ``break`` does not."""

    _client: "AsyncMoltClient"

    async def open(self) -> "AsyncListener":
        """Send the listen request and wait for "listening" (once)."""
        if self._req is None:
            await self._client._run(self.open_steps())
        return self

    async def get(self, timeout: Optional[float] = None) -> Optional[Notification]:
        """The next note, or None after ``timeout`` seconds without one."""
        await self.open()
        note: Optional[Notification] = await self._client._run(self.next_steps(timeout))
        return note

    def __aiter__(self) -> AsyncIterator[Notification]:
        return self

    async def __anext__(self) -> Notification:
        if self.done:
            raise StopAsyncIteration
        note = await self.get(self.timeout)
        if note is None:
            self.close()
            raise StopAsyncIteration
        return note

    async def __aenter__(self) -> "AsyncListener":
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        self.close()
