"""The in-process transport: the Exchange of protocol.py over molt_db's
host in this process (the ``_host`` extension, docs/python.md) instead of
a worker's pipes or socket.

The exchange opens one host session (docs/host.md "Sessions"), as a
worker client's connection is one worker session: transaction(), tx_id
and a replica's read-your-writes behave as with the worker client.
Each request is one envelope submitted in it; each response frame
the host gives is routed by its request_id exactly as a worker's frames
are (``Exchange.deliver``), so the steps of protocol.py (timeouts,
cancels, hooks, streams) run unchanged. A stream is kept until its last
frame was taken, then released.

- ``SyncHostExchange``: the host is driven by the threads in a call: the
  thread waiting for a frame runs the host's loop itself (its waits, in the
  loop's own poll, without the GIL; a submit from another thread ends
  them), so a query costs no thread hand-off. One thread at a time drives; the others
  sleep on their own queue until they get a frame or the turn to drive
  (leader/followers, no polling). A cancel (client timeout, Ctrl-C,
  ``cancel()``, a stream closed early) drives the host until the cancelled
  request's last frame arrived and the cancel's own work is over
  (``Host.busy()``), at most ``grace_ms``, so the query has ended on the
  server when the call returns; an open transaction, idle, is no such work.
  Work that needs the loop while no thread is in a call (``Host.pending()``:
  a transaction open, with its idle timeout; a request whose caller gave
  up) is driven by a keeper thread, started only then: while some of it
  is busy, it waits on the host's fd (``wait_io``, not holding the
  driver's lock) until the host's next timer, at most ``_KEEP_WAIT_S`` at a
  time, and then runs a turn; while only timers remain (an idle
  transaction's), it sleeps until the next is due, woken by the end of any
  call. A call made meanwhile drives at once, or after the keeper's turn. A
  stream nobody reads and the pool's idle timers wait for the next call.
- ``AsyncHostExchange``: the host is driven by the event loop: its fd is
  in the loop (``add_reader``), a submit schedules a loop turn of the host
  (``call_soon``) and its next timer is a ``call_later``; each turn runs
  the host's I/O on the loop's thread and hands out what arrived. No
  thread hand-off per request; the host progresses while the loop runs.

fork(): an exchange belongs to the process that made it. In a child it
reads as dead (``dead``), so the client makes a new one there (a fresh
host: its own loop and connections); the parent's is abandoned
without a call into it (``_host`` frees nothing it inherited).
"""

from __future__ import annotations

import asyncio
import math
import os
import queue
import threading
import time
import weakref
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any, Optional, Sequence

from . import c_rows
from .calls import WORKER_DEFAULT_TIMEOUT_MS, Call, ConnectionLost, finish, finish_ok, result_of
from .envelope import Response, decode_response
from .errors import InvalidInput, ProtocolError, WorkerStartError, WorkerUnavailable
from .placeholders import scan_placeholders
from .protocol import Exchange, Item, Request, Slot
from .results import QueryResult

if TYPE_CHECKING:
    from .async_client import _Pending

__all__ = ["host_args", "SyncHostExchange", "AsyncHostExchange"]

#: the exit status molt_worker gives for arguments it refuses
_USAGE_STATUS = 2


def _host_module() -> Any:
    try:
        from . import _host  # type: ignore[attr-defined]
    except ImportError as e:
        raise WorkerUnavailable(
            "the in-process transport needs the extension molt_db_adapter._host "
            f"(built by `make` or `pip install ./python`): {e}"
        ) from None
    return _host


def host_args(args: Any) -> list[str]:
    """The worker's arguments (without the program name and transport)."""
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise InvalidInput("the in-process client takes molt_worker's arguments as a list of str",
                           client_side=True)
    if not all(isinstance(a, str) for a in args):
        raise InvalidInput("every argument must be a str", client_side=True)
    return list(args)



#: how many fork()s this process descends from: an exchange made before
#: one belongs to the parent (os.getpid() would cost a system call per check)
_forks = [0]
#: this process's exchanges: a fork's child marks each one dead
_exchanges: "weakref.WeakSet[_HostExchange]" = weakref.WeakSet()
_FORKED = "the in-process host belongs to the parent of a fork"


def _after_fork_in_child() -> None:
    _forks[0] += 1
    for ex in list(_exchanges):
        ex.dead = _FORKED


os.register_at_fork(after_in_child=_after_fork_in_child)


_RID_KEY = b"\xaarequest_id"  # encode_request's first key, a fixstr
_UINT = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}


def _request_id_of(frame: bytes) -> int:
    """The request_id of a framed request from encode_request (its first
    key), without decoding the rest; 0 when it is not there."""
    if frame[5:16] != _RID_KEY:
        return 0
    tag = frame[16]
    if tag < 0x80:
        return tag
    size = _UINT.get(tag)
    return int.from_bytes(frame[17:17 + size], "big") if size else 0


class _HostExchange(Exchange):
    """What both exchanges share: the host, submitting, handing out news."""

    #: the host's mode: driven (whoever calls news() runs its loop) or
    #: threaded (a loop thread of its own); see the module doc
    driven = False
    send_waits = False
    #: one-shot calls are submitted with submit_fast (AsyncHostExchange)
    completes_in_c = False

    def __init__(self, args: list[str], max_response: int) -> None:
        super().__init__(max_response, None)
        mod = _host_module()
        self._host_error: type[Exception] = mod.HostError
        self.take_owned = mod.take_owned
        self.submit_call = mod.submit_call
        try:
            self.host = mod.Host(args, driven=self.driven)
        except mod.HostError as e:
            raise WorkerStartError(str(e), _USAGE_STATUS) from None
        try:
            #: this exchange's session: its transactions and read-your-writes
            #: span its requests, as on one connection to a worker
            self.session: int = self.host.session_open()
        except mod.HostError as e:
            self.host.close()
            raise WorkerUnavailable(f"the in-process host refused a session: {e}") from None
        self.fd: int = self.host.fileno()
        self.forks = _forks[0]
        _exchanges.add(self)
        self.proc = None  # no worker process (worker_pid is None)
        #: streams not yet released (the host hands them back from news()),
        #: each with the request_id it was submitted for
        self.live: dict[Any, int] = {}
        #: the live streams whose frames the flow control leaves in the host
        #: (their requests' streams are full, flow.py): the host pauses
        #: their queries, and the session's new requests wait. A call made
        #: meanwhile lets them flow again: the general path's register(),
        #: the asyncio fast calls counted as waiting, the blocking fast
        #: calls (host_call.c) by taking the general path. Never rebound.
        self.held: dict[Any, int] = {}

    def send_nowait(self, frame: bytes) -> None:
        """Submit one framed request (the host takes it without the prefix)."""
        self.send_envelope(_request_id_of(frame), memoryview(frame)[4:])  # type: ignore[arg-type]

    def submit(self, body: bytes) -> Any:
        """Submit an envelope in this exchange's session: its stream;
        ConnectionLost when the exchange or the host is over."""
        reason = self.dead
        if reason:
            raise self.lost(reason, sent=False)
        try:
            return self.host.submit(body, 0, self.session)
        except self._host_error as e:
            raise self._refused(e) from None

    def _refused(self, e: Exception) -> ConnectionLost:
        """The host refused a submit with HostError ``e`` (closed, a fork's
        copy): the exchange is over; the ConnectionLost to raise."""
        self.fail(f"the in-process host refused the request: {e}")
        return self.lost(self.dead or str(e), sent=False)

    def send_envelope(self, rid: int, body: bytes) -> None:
        """Submit request ``rid``'s envelope."""
        stream = self.submit(body)
        self.live[stream] = rid
        # what the host answers inside submit (InvalidInput for an empty
        # request or one above max_request_bytes, Busy) is handed out here
        self.hand_out([stream])

    def hand_out(self, streams: list[Any]) -> None:
        """Route the frames of the streams with news; release the finished."""
        for stream in streams:
            self.route(stream, self.live.get(stream, 0))

    def route(self, stream: Any, rid: int, first: Any = None) -> None:
        """Route the frames of ``stream`` (after ``first``, one taken from
        it already); release it once finished. A full stream's are left in
        the host while the flow control is stopped."""
        try:
            # large frames come as owned Frames: an arrow_ipc payload
            # reaches pyarrow without a copy (envelope.decode_response)
            if rid not in self.flow.unread:
                frames = self.take_owned(stream)
                for body in frames if first is None else [first, *frames]:
                    self.check_size(body)
                    self.deliver(body, rid)
            else:  # a flow-controlled stream: part by part, until full
                if first is not None:
                    self.check_size(first)
                    self.deliver(first, rid)
                while True:
                    if self._hold(stream, rid):
                        return
                    frames = self.take_owned(stream, 1)
                    if not frames:
                        break
                    self.check_size(frames[0])
                    self.deliver(frames[0], rid)
        except ProtocolError as e:  # never from the host's own frames
            self.fail(f"protocol error: {e.message}")
        if stream.done:
            stream.release()
            self.live.pop(stream, None)
            if rid in self.pending:
                # ended without its answer: the host closed the session
                # under it (write_timeout_ms, max_unread_bytes)
                self.fail(_SESSION_LOST)

    def deliver(self, body: bytes, request_id: int = 0) -> Response:
        resp = super().deliver(body, request_id)
        if resp.status == "InvalidInput" and resp.error and resp.error.startswith(_SESSION_CLOSED):
            self.fail(_SESSION_LOST)  # the next call makes a new exchange
        return resp

    def _hold(self, stream: Any, rid: int) -> bool:
        """Leave ``stream``'s frames in the host (True) while the flow
        control is stopped and its request is a full stream."""
        if not self.flow.stopped:
            return False
        with self.lock:  # decided under the lock its resume is
            if self.flow.stopped and rid in self.flow.full:
                self.held[stream] = rid
                return True
        return False

    def route_held(self) -> None:
        """Route the held streams that may flow now (the flow control
        resumed, or their request was given up). Only on the thread that
        drives the host."""
        with self.lock:
            flow = self.flow
            ready = {st: rid for st, rid in self.held.items()
                     if self.dead or not flow.stopped or rid not in flow.full}
            for stream in ready:
                del self.held[stream]
        if self.dead:
            return  # the host is closed: so are its streams
        for stream, rid in ready.items():
            self.route(stream, rid)

    def flow_changed(self, resume: bool) -> None:
        if resume and self.held:
            self.unhold()

    def unregister(self, rid: int) -> None:
        super().unregister(rid)
        if self.held:
            self.unhold()  # a held stream given up: its frames go (dropped)

    def unhold(self) -> None:
        """Route the held streams that may flow now, or have them routed."""
        raise NotImplementedError

    def check_size(self, body: Any) -> None:
        """The client's max_response_bytes, as the worker clients' frame
        decoder applies it (framing.py): a larger frame ends the exchange."""
        n = len(body) if type(body) is bytes else memoryview(body).nbytes
        if n > self.decoder.max_frame:
            raise ProtocolError(
                f"the worker sent a frame of {n} bytes, above the client's "
                f"limit of {self.decoder.max_frame} (max_response_bytes)")

    async def why_lost(self, lost: ConnectionLost) -> ConnectionLost:
        return lost

    def _shut(self) -> None:
        """Close this process's host (a fork's copy is only forgotten)."""
        if self.forks == _forks[0]:
            self.host.close()  # closes the session too: its transactions roll back
        self.live.clear()
        self.fail("the client closed the connection")


_LEAD = object()  # put in a follower's queue: its turn to wait on the host

#: how the host answers a request in a session it closed (worker/host_session.c)
_SESSION_CLOSED = "the session was closed ("
_SESSION_LOST = ("the in-process host closed this client's session (a limit of the worker: "
                 "write_timeout_ms or max_unread_bytes, e.g. a stream not read for that long)")


def _take(slot: "queue.SimpleQueue[Any]") -> Optional[Item]:
    """A frame already in ``slot`` (turn markers skipped), else None. Only
    the slot's own thread takes from it: not empty stays not empty."""
    while not slot.empty():
        item = slot.get_nowait()
        if item is not _LEAD:
            return item  # type: ignore[no-any-return]
    return None


#: the keeper's longest wait on the host's fd (so it sees new timers and
#: close) and how long it stays without pending work
_KEEP_WAIT_S = 0.1
_KEEP_IDLE_S = 1.0


class SyncHostExchange(_HostExchange):
    """The blocking client's exchange; any number of threads share it."""

    driven = True

    def __init__(self, args: list[str], max_response: int) -> None:
        super().__init__(args, max_response)
        self.leading = threading.Lock()  # held by the thread driving the host
        self.followers: set[queue.SimpleQueue[Any]] = set()  # guarded by self.lock
        #: the keeper (driving while nobody is in a call); guarded by self.idle
        self.idle = threading.Condition()
        self.keeper = False  # its thread runs
        self.keeper_stop = False
        #: one-shot calls made in C while no other thread drives (host_call.c)
        self.caller = _host_module().Caller(
            self, self.host, self.session, self.leading, self.followers, self.decoder.max_frame,
            scan_placeholders, QueryResult, result_of, ConnectionLost, WORKER_DEFAULT_TIMEOUT_MS, c_rows)

    def new_slot(self) -> Slot:
        return queue.SimpleQueue()

    # ---- the fast path of a one-shot call (host_call.c) ----
    def _handover(self, stream: Any, rid: int, got: Any, exc: Optional[BaseException]) -> tuple[Optional[Request], Optional[BaseException]]:
        """What the C caller's wait gave for request ``rid`` (``stream``)
        when it was not the Ok final frame, ``exc`` what it raised, under
        ``leading``: the stream handed to the general path as a Request (its
        frames routed to its slot as for any request), with the
        interruption to raise once the request is cancelled."""
        if exc is not None and not isinstance(exc, self._host_error):
            try:
                return self._adopt(stream, rid), exc
            except ConnectionLost:  # the exchange is over: nothing to cancel
                raise exc from None
        req = self._adopt(stream, rid)
        if exc is not None:
            self.fail(str(exc))  # its slot now holds the ConnectionLost
        elif type(got) is list:
            self.hand_out(got)
        elif got is not None:  # a frame for the general path
            self.route(stream, rid, got)
        return req, None

    def _adopt(self, stream: Any, rid: int) -> Request:
        """A fast call's stream handed to the general path: a request like
        any other (ConnectionLost when the exchange is over)."""
        self.live[stream] = rid
        return Request(self, rid, self.register(rid), None)

    def wait(self, slot: "queue.SimpleQueue[Any]", timeout: float) -> Optional[Item]:
        """The next item of ``slot`` within ``timeout`` seconds, else None."""
        deadline = time.monotonic() + timeout
        if self.leading.acquire(blocking=False):  # nobody drives: no queueing
            try:
                return self._lead(slot, deadline)
            finally:
                self.leading.release()
                self._pass_turn()
                self._keep_if_pending()
        try:
            while True:
                item = _take(slot)
                if item is not None:
                    return item
                with self.lock:
                    self.followers.add(slot)
                if self.leading.acquire(blocking=False):
                    with self.lock:
                        self.followers.discard(slot)
                    try:
                        return self._lead(slot, deadline)
                    finally:
                        self.leading.release()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    got = slot.get(timeout=left)
                except queue.Empty:
                    return None
                if got is not _LEAD:
                    return got  # type: ignore[no-any-return]
        finally:
            with self.lock:
                self.followers.discard(slot)
            self._pass_turn()
            self._keep_if_pending()

    def _lead(self, slot: "queue.SimpleQueue[Any]", deadline: float) -> Optional[Item]:
        while True:
            item = _take(slot)
            if item is not None:
                return item
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._turn(left)

    def _turn(self, wait_s: float) -> None:
        """One turn of the host (waiting up to wait_s for work); what it
        gives is handed out. Only the thread holding ``leading``."""
        if self.held:
            self.route_held()
        try:
            news = self.host.news(wait_s)
        except self._host_error as e:
            self.fail(str(e))  # every slot now holds the ConnectionLost
            return
        self.hand_out(news)
        if self.held:
            self.route_held()  # resumed while this turn routed (flow_changed)

    def unhold(self) -> None:
        """Now when nobody drives the host, else by the thread that does,
        at the end of its turn (kicked out of its wait: it may be a
        listener's reader, waiting long)."""
        if not self.leading.acquire(blocking=False):
            self.host.kick()
            return
        try:
            self.route_held()
        finally:
            self.leading.release()
            self._pass_turn()

    def _pass_turn(self) -> None:
        """Nobody drives the host: wake a follower to do it."""
        # a follower that adds itself after this look tries to lead itself
        if not self.followers or self.leading.locked():
            return
        with self.lock:
            follower = next(iter(self.followers), None)
        if follower is not None:
            follower.put(_LEAD)

    def settle(self, rid: int, within: float) -> None:
        """After a cancel of ``rid``: drive the host until its last frame
        arrived and the cancel's own work (the CancelRequest, the connection
        draining) is over, at most ``within`` seconds: the query has ended
        on the server. Another thread in a call finishes that work instead.
        An open transaction left idle (the cancelled request's, or another)
        is no such work (``Host.busy()``): the call returns as soon as the
        cancel is through."""
        try:
            slot: queue.SimpleQueue[Any] = self.register(rid)  # type: ignore[assignment]  # its frames come here again
        except ConnectionLost:
            return
        deadline = time.monotonic() + within
        try:
            while rid in self.live.values():  # its last frame is still to come
                item = self.wait(slot, deadline - time.monotonic())
                if item is None or isinstance(item, ConnectionLost):
                    return
        finally:
            self.unregister(rid)
        while not self.followers and self.host.busy() > 0:
            left = deadline - time.monotonic()
            # (a keeper's turn is short; a caller that drives finishes it)
            if left <= 0 or not self.leading.acquire(timeout=min(left, _KEEP_WAIT_S)):
                break
            try:
                # not news(left): it would wait on past the work's end,
                # for a frame that nobody is owed
                self._wait_io(self.host.timeout(), min(left, _KEEP_WAIT_S))
                self._turn(0.0)
            finally:
                self.leading.release()
            self._pass_turn()
        self._keep_if_pending()  # what is left (past `within`), or timers

    def _wait_io(self, due: int, most: float) -> None:
        """Wait for the host's I/O (a cancel's CancelRequest, a query
        draining) or its next timer (``due``: ``Host.timeout()``), at most
        ``most`` seconds; no wait when it has work now."""
        if due != 0:
            self.host.wait_io(min(due / 1000.0, most) if due > 0 else most)

    # ---- the keeper: drives the host while nobody is in a call ----
    def _keep_if_pending(self) -> None:
        """At the end of a wait: start the keeper when the host has work
        that needs its loop (one C call when it has none)."""
        if self.dead or self.host.pending() <= 0:
            return
        with self.idle:
            if self.keeper or self.keeper_stop:
                self.idle.notify()  # its timers may have changed
                return
            self.keeper = True
        threading.Thread(target=self._keep, name="molt-db-host-keeper", daemon=True).start()

    def _keep(self) -> None:
        try:
            while self._keep_turn():
                pass
        except self._host_error:  # closed under it
            with self.idle:
                self.keeper = False

    def _stop_keeping(self) -> bool:
        """Under self.idle: the keeper ends (decided with the lock held, so
        that a caller seeing work after this starts a new one)."""
        self.keeper = False
        return False

    def _keep_turn(self) -> bool:
        """One step of the keeper: False once it ended."""
        with self.idle:
            if self.keeper_stop:
                return self._stop_keeping()
            if self.host.pending() <= 0:
                # nothing pending: stay a while for the next transaction
                self.idle.wait(_KEEP_IDLE_S)
                if self.keeper_stop or self.host.pending() <= 0:
                    return self._stop_keeping()
                return True
            due = self.host.timeout()
            if due != 0 and self.host.busy() <= 0:
                # only timers (an idle transaction's, the pool's): sleep
                # until the next is due, not watching the fd; a call's end
                # wakes this (its timers may have changed), so does close
                if self.idle.wait(due / 1000.0 if due > 0 else None):
                    return True
                due = 0
        # without holding `leading`: a call made meanwhile drives at once
        self._wait_io(due, _KEEP_WAIT_S)
        if not self.leading.acquire(blocking=False):
            # a caller drives (and runs what is due): look again later
            with self.idle:
                self.idle.wait(_KEEP_WAIT_S)
            return True
        try:
            self._turn(0.0)
        finally:
            self.leading.release()
        self._pass_turn()
        return True

    def close(self, wait_s: float = 5.0) -> None:
        with self.idle:
            self.keeper_stop = True
            self.idle.notify_all()
        self._shut()


#: submit_plain's default timeout, a float once (C reads an int as a new float on every call)
_DEFAULT_TIMEOUT_MS = float(WORKER_DEFAULT_TIMEOUT_MS)


class AsyncHostExchange(_HostExchange):
    """The asyncio client's exchange: the host's fd is in the loop."""

    driven = True
    completes_in_c = True

    def __init__(self, args: list[str], max_response: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(args, max_response)
        from .async_client import _Pending  # async_client imports this module

        self._pending = _Pending
        self.loop = loop
        mod = _host_module()
        self._drain = mod.drain
        self._wake = mod.wake
        self._submit_fast = mod.submit_fast
        self._submit_plain = mod.submit_plain
        #: what drain makes a plain query's result with (rows decoded in C),
        #: and what it calls for a fast call whose stream ended unanswered
        self._plain = (QueryResult, c_rows, self._fast_ended)
        #: the one-shot calls in flight (``submit_fast``): each stream and the
        #: Waiter its final frame completes in C (``_host.drain``), which
        #: carries the call's request_id and client-side deadline
        self.fast: dict[Any, Any] = {}
        #: the waiters a turn completed, whose tasks ``_host.wake`` wakes
        self.woken: list[Any] = []
        #: one timer for the fast calls' deadlines (time.monotonic()), armed
        #: for the earliest (a timer per call would cost a heap push and a
        #: cancel each)
        self._sweep: Optional[asyncio.TimerHandle] = None
        self._sweep_at = math.inf  # the deadline it is armed for
        #: driven: the turn scheduled for a submit, and the host's next timer
        self._turn: Optional[asyncio.Handle] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at = math.inf  # when it fires
        loop.add_reader(self.fd, self._on_news)

    def new_slot(self) -> Slot:
        return self._pending()

    def _on_news(self) -> None:
        self._turn = None
        try:
            # one host turn; the fast calls' waiters are completed in C
            news = self._drain(self.host, self.fast, self.decoder.max_frame, self.woken, self._plain)
            if news:
                self.hand_out(news)
            due = self.host.timeout()
        except self._host_error as e:
            # closed, maybe by a finalizer the collector ran in this turn
            self.loop.remove_reader(self.fd)
            self.fail(str(e))
            return
        except BaseException as e:
            # the turn stopped midway (MemoryError or KeyboardInterrupt while
            # a result was built in it): the news it took out is lost, so
            # the calls waiting get ConnectionLost rather than their deadline
            self.loop.remove_reader(self.fd)
            self.fail(f"a turn of the in-process host failed: {e!r}")
            raise
        # a turn when the host's next timer is due (its timeouts, idle and
        # keepalive timers run on this loop); inline: it runs every turn
        if due > 0:
            when = self.loop.time() + due / 1000.0
            # the timer already armed for about then (or sooner) stays:
            # re-arming on every turn would cost a heap push per request
            if self._timer_at > when + 0.001:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = self.loop.call_at(when, self._on_timer)
                self._timer_at = when
        elif due == 0:
            self._kick()
        elif self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf
        if self.flow.full:
            self.reflow()  # fast calls answered: maybe only full streams wait now
        if self.woken:
            # the answered calls' tasks run now, not a loop iteration later
            # through a Handle each
            self._wake(self.woken)

    def unhold(self) -> None:
        """Now: every call is made on the loop's thread."""
        self.route_held()

    def waiting(self) -> int:
        # the fast calls in flight wait too (their frames never pass
        # through pending): a stop would leave them behind a paused session
        return len(self.pending) + len(self.fast)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._on_news()

    def _kick(self) -> None:
        if self._turn is None and self.dead is None:
            self._turn = self.loop.call_soon(self._on_news)

    def send_envelope(self, rid: int, body: bytes) -> None:
        super().send_envelope(rid, body)
        self._kick()  # the submit's turn: write the request out

    # ---- one-shot calls (the short way of AsyncMoltClient._call): completed in C ----
    def submit_fast(self, rid: int, call: Call, wait: float) -> Any:
        """Submit request ``rid`` of a one-shot call, its envelope packed in C
        (``_host.submit_fast``): the Waiter that gets its final frame as
        drain gives it (``result_of`` reads it) or, when the host is lost,
        the ConnectionLost; None when a value is left to msgpack (the call
        takes the general path). ``wait``: seconds until the waiter raises
        asyncio.TimeoutError."""
        reason = self.dead
        if reason:
            raise self.lost(reason, sent=False)
        if self.held:
            return None  # see submit_plain
        try:
            waiter = self._submit_fast(self.host, self.session, rid, call.entry, call.payload,
                                       call.timeout_ms, self.fast, self.loop, _monotonic() + wait)
        except self._host_error as e:  # as submit
            raise self._refused_fast(e) from None
        if waiter is not None:
            self._started(waiter)
        return waiter

    def submit_plain(self, client: Any, sql: Any, params: Any, write: bool) -> Any:
        """``client.query(sql, params)`` (write: ``execute``) with every
        option at its default, made in C up to the await
        (``_host.submit_plain``: the client's settings, the payload, the
        request id, the submit): its Waiter, as ``submit_fast`` gives it;
        None, with nothing submitted, for the general path (hooks, a value
        the C packer leaves, an exchange lost or just refused)."""
        if self.dead or self.held:
            # held streams: the general path's register lets them flow
            # first (the host may have paused, or closed, the session
            # behind them: a lost session is then found before the call
            # leaves, and the call goes to a new exchange)
            return None
        try:
            waiter = self._submit_plain(self.host, self.session, client, sql, params, write, self.fast,
                                        self.loop, scan_placeholders, _DEFAULT_TIMEOUT_MS)
        except self._host_error as e:
            self._refused_fast(e)
            return None
        # _started's checks inline: with many in flight, none holds
        if waiter is not None and (self._turn is None or waiter.deadline < self._sweep_at
                                   or self.flow.stopped):
            self._started(waiter)
        return waiter

    def _fast_ended(self) -> None:
        """A fast call's stream ended without its answer (from drain): the
        host closed the session under it, as route() sees for the others."""
        self.fail(_SESSION_LOST)

    def _refused_fast(self, e: Exception) -> ConnectionLost:
        self.fail(f"the in-process host refused the request: {e}")
        return self.lost(self.dead or str(e), sent=False)

    def _started(self, waiter: Any) -> None:
        """After a fast submit: the deadline sweep armed for ``waiter``'s
        deadline when it is the earliest, and the turn that writes the
        request out. Alone in flight, that turn runs now; else one turn,
        scheduled, takes every request submitted in this loop iteration."""
        when = waiter.deadline
        if when < self._sweep_at:
            self._arm_sweep(when)
        if self.flow.stopped:
            self.reflow()  # one more waiting: held streams flow again
        if self._turn is None:
            # alone in fast, this call's own waiter (no callback yet) is the
            # only one the turn can complete: no task is woken inside it,
            # also when this submit comes from a task that wake() runs
            if not self.live and len(self.fast) == 1:
                self._on_news()
            elif self.dead is None:
                self._turn = self.loop.call_soon(self._on_news)

    def result_of(self, call: Call, got: Any, rid: int) -> Any:
        """A fast call's result from what drain gave, as ``finish`` gives it:
        an Ok final frame's parts ``(codec, payload, metrics)``, read in C,
        without a Response in between; any other frame (bytes) the general
        way (``rid`` is the request's when the frame names none), and one
        the general code would refuse ends the exchange as there
        (ConnectionLost)."""
        self.answered = True
        if type(got) is tuple:
            return finish_ok(call, rid, *got)
        if type(got) is not bytes:
            raise got  # the ConnectionLost of fail()
        try:
            self.check_size(got)
            resp = decode_response(got)
        except ProtocolError as e:
            self.fail(f"protocol error: {e.message}")
            raise self.lost(self.dead or e.message) from None
        if resp.request_id == 0:
            resp.request_id = rid
        if resp.status == "InvalidInput" and resp.error and resp.error.startswith(_SESSION_CLOSED):
            self.fail(_SESSION_LOST)  # as deliver
        return finish(call, resp)

    def unfast(self, waiter: Any) -> None:
        """A fast call gave up waiting (task cancelled, timed out): its
        stream's remaining frames go through the general code (dropped
        there, the stream released after its last)."""
        stream = waiter.stream
        if self.fast.pop(stream, None) is not None and not stream.done:
            self.live[stream] = waiter.request_id
        self.reflow()

    def _arm_sweep(self, when: float) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep = self.loop.call_later(max(0.0, when - _monotonic()), self._expire)
        self._sweep_at = when

    def _expire(self) -> None:
        """The earliest deadline came: the fast calls past theirs time out
        (their tasks then leave fast through ``unfast``)."""
        self._sweep = None
        self._sweep_at = math.inf
        now = _monotonic()
        nearest = math.inf
        for waiter in list(self.fast.values()):
            if waiter.done():
                continue
            if waiter.deadline <= now:
                waiter.set_exception(asyncio.TimeoutError())
            elif waiter.deadline < nearest:
                nearest = waiter.deadline
        if nearest < math.inf:
            self._arm_sweep(nearest)

    def fail(self, reason: str) -> None:
        super().fail(reason)
        fast, self.fast = self.fast, {}
        woken, self.woken = self.woken, []
        if self.loop.is_closed():
            return  # nobody waits: the loop that would run the tasks is gone
        lost = self.lost(reason)
        for waiter in fast.values():
            if not waiter.done():
                waiter.set_result(lost)
        if woken:
            # answered in a turn the failure cut short (a finalizer closed
            # the host in it): their tasks still wake, with their rows
            self.loop.call_soon(self._wake, woken)

    async def send(self, frame: bytes) -> None:
        self.send_nowait(frame)

    async def close(self, wait_s: float = 5.0) -> None:
        if self.forks == _forks[0]:
            self.loop.remove_reader(self.fd)
        for handle in (self._turn, self._timer, self._sweep):
            if handle is not None:
                handle.cancel()
        self._shut()

    def close_without_loop(self) -> None:
        """Its loop is closed (and with it the reader): free the host."""
        self._shut()
