"""Flow control of streams inside the client.

A stream's parts arrive as fast as the server sends them; without a bound
a reader slower than the server would have the client hold the rest of
the result. So the client counts, for each stream, the payload bytes it
holds that the stream's reader has not taken yet: at STREAM_UNREAD_HIGH
that stream is *full*. While every request waiting on a connection is a
full stream, the client takes no more frames from it: the worker's
socket (or the in-process host's stream) fills, and the worker's or
host's own backpressure pauses the query on the server (docs/worker.md,
8 MiB unread). Each part the reader takes lets the next one in, so the
server sees the client read as fast as its reader does: a reader that
takes a part (batch_rows rows) at least every paused_hold_ms (while
other clients wait for the database) and every write_timeout_ms keeps
its query and its session.

A connection carries all its requests' frames, so frames stop for all of
them or for none: any other request waiting on the connection (a query
made while a stream is being read, a cancel settling) lets them flow,
the full stream's included, until it is answered. A listen request does
not count as waiting (the worker bounds a listener's notes itself). Two
streams read at different speeds on one connection are bounded by the
faster one's pace: give each its own client.
"""

from __future__ import annotations

#: a stream's unread parts (payload bytes) at which it is full
STREAM_UNREAD_HIGH = 4 << 20

#: what ``update`` returns
STOP, RESUME = -1, 1

#: how a request's frames count (``Exchange.register``): it waits for them;
#: it is a stream (waits, and its parts are counted); it is a listener
#: (neither)
WAITS, STREAM, PASSIVE = 0, 1, 2


class StreamFlow:
    """The counts of one connection's streams; every method is called with
    the connection's lock held."""

    __slots__ = ("unread", "full", "passive", "stopped", "off")

    def __init__(self) -> None:
        #: request id of each stream waiting -> payload bytes held unread
        self.unread: dict[int, int] = {}
        #: the full ones among them
        self.full: set[int] = set()
        #: the requests waiting that do not count as waiting (listeners)
        self.passive: set[int] = set()
        #: no more frames are to be taken from the connection
        self.stopped = False
        #: the connection is closing: nothing is counted any more
        self.off = False

    def opened(self, rid: int, kind: int) -> None:
        """Request ``rid`` waits for its frames (``kind``: WAITS, STREAM or
        PASSIVE)."""
        if kind == STREAM and not self.off:
            self.unread[rid] = 0
        elif kind == PASSIVE:
            self.passive.add(rid)

    def arrived(self, rid: int, n: int) -> bool:
        """A part of ``n`` bytes for ``rid``: True when that made it full."""
        left = self.unread.get(rid)
        if left is None:
            return False
        left += n
        self.unread[rid] = left
        if left >= STREAM_UNREAD_HIGH and rid not in self.full:
            self.full.add(rid)
            return True
        return False

    def taken(self, rid: int, n: int) -> bool:
        """Its reader took a part of ``n`` bytes: True when ``rid`` stopped
        being full."""
        left = self.unread.get(rid)
        if left is None:
            return False
        left -= n
        self.unread[rid] = left
        if left < STREAM_UNREAD_HIGH and rid in self.full:
            self.full.discard(rid)
            return True
        return False

    def forget(self, rid: int) -> None:
        """``rid`` waits no more (its last frame came, or it was given up)."""
        self.unread.pop(rid, None)
        self.passive.discard(rid)
        self.full.discard(rid)

    def close(self) -> None:
        """Count nothing from now on (the connection is closing)."""
        self.off = True
        self.unread.clear()
        self.full.clear()
        self.passive.clear()

    def update(self, waiting: int) -> int:
        """After a change, with ``waiting`` requests waiting on the
        connection (passive ones included): STOP or RESUME when taking
        frames should stop or resume, 0 when nothing changed."""
        stop = bool(self.full) and len(self.full) >= waiting - len(self.passive)
        if stop == self.stopped:
            return 0
        self.stopped = stop
        return STOP if stop else RESUME
