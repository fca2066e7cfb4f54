"""The clients' protocol core (molt_db_adapter/protocol.py) driven by hand,
without I/O: the test plays the driver and the worker, byte for byte, so
each step a call asks for, and each frame it sends, is checked."""

import queue

import msgpack
import pytest

from molt_db_adapter import MoltClient, Timeout, WorkerUnavailable
from molt_db_adapter.calls import ConnectionLost
from molt_db_adapter.framing import FrameDecoder, encode_frame
from molt_db_adapter.protocol import CONNECT, Exchange, Explain, Send, Wait, call_steps


class MemoryExchange(Exchange):
    """An Exchange whose transport is a list of the frames sent."""

    def __init__(self):
        super().__init__(1 << 20, None)
        self.sent = []

    def new_slot(self):
        return queue.SimpleQueue()

    def send_nowait(self, frame):
        if self.dead:
            raise self.lost(self.dead)
        self.sent.append(frame)

    def requests(self):
        """The envelopes sent, payloads decoded."""
        out = []
        for body in FrameDecoder().feed(b"".join(self.sent)):
            env = msgpack.unpackb(body)
            if "payload" in env:
                env["payload"] = msgpack.unpackb(env["payload"])
            out.append(env)
        return out


def response(rid, status="Ok", payload=None, more=False, **extra):
    env = {"request_id": rid, "status": status, **extra}
    if payload is not None:
        env["codec"] = "msgpack"
        env["payload"] = msgpack.packb(payload)
    if more:
        env["more"] = True
    return encode_frame(msgpack.packb(env))


ROWS = {"columns": ["n"], "types": ["int8"], "rows": [[7]]}


@pytest.fixture
def client():
    # never connects: the test gives the steps their connection
    return MoltClient(socket_path="/nonexistent/molt.sock", timeout_ms=500)


def until_wait(steps, conn, first=None):
    """Answer CONNECT with conn and perform the Send; the Wait step."""
    step = next(steps) if first is None else first
    assert step is CONNECT
    step = steps.send(conn)
    assert isinstance(step, Send) and step.conn is conn
    conn.send_nowait(step.frame)
    step = steps.send(None)
    assert isinstance(step, Wait)
    return step


def test_a_query_sends_one_request_and_its_final_frame_is_the_result(client):
    conn = MemoryExchange()
    steps = call_steps(client, client._query_call(
        "select $1", [7], db_alias=None, result_format="msgpack", max_rows=None,
        timeout_ms=None, tag="t1", row_shape=None, idempotent=True))
    wait = until_wait(steps, conn)
    [req] = conn.requests()
    assert req["entry"] == "db_query" and req["timeout_ms"] == 500
    assert req["payload"]["sql"] == "select $1" and req["payload"]["tag"] == "t1"
    assert 0 < wait.timeout <= 1.5  # the worker's 500 ms plus the client's grace
    rid = req["request_id"]
    # the answer arrives in pieces, after a frame for an id nobody waits for
    data = response(rid + 100, "Ok") + response(rid, payload=ROWS, metrics={"rows": 1})
    for i in range(0, len(data), 3):
        conn.received(data[i:i + 3])
    with pytest.raises(StopIteration) as done:
        steps.send(wait.req.slot.get_nowait())
    result = done.value.value
    assert result.rows == [(7,)] and result.columns == ["n"] and result.request_id == rid
    assert conn.pending == {}


def test_no_answer_by_the_deadline_raises_timeout_and_sends_a_cancel(client):
    conn = MemoryExchange()
    steps = call_steps(client, client._admin_call("ping", 200))
    wait = until_wait(steps, conn)
    rid = wait.req.rid
    with pytest.raises(Timeout, match="client-side timeout"):
        steps.send(None)  # the driver's wait ran out
    cancel = conn.requests()[-1]
    assert cancel["entry"] == "cancel" and cancel["payload"] == {"request_id": rid}
    assert rid not in conn.pending
    conn.received(response(rid, payload=ROWS))  # a late answer goes nowhere
    assert wait.req.slot.empty()


def test_an_interrupted_wait_cancels_the_request(client):
    conn = MemoryExchange()
    steps = call_steps(client, client._admin_call("stats", None))
    wait = until_wait(steps, conn)
    with pytest.raises(KeyboardInterrupt):
        steps.throw(KeyboardInterrupt())
    assert conn.requests()[-1] == {"request_id": conn.requests()[-1]["request_id"], "entry": "cancel",
                                   "payload": {"request_id": wait.req.rid}, "codec": "msgpack"}


def test_an_idempotent_call_is_resent_on_a_new_connection(client):
    first, second = MemoryExchange(), MemoryExchange()
    steps = call_steps(client, client._admin_call("ping", None))
    wait = until_wait(steps, first)
    first.fail("the worker exited with status 1")
    step = steps.send(wait.req.slot.get_nowait())
    assert isinstance(step, Explain) and step.lost.reason == "the worker exited with status 1"
    wait2 = until_wait(steps, second, first=steps.send(step.lost))
    assert wait2.req.rid != wait.req.rid and second.requests()[0]["entry"] == "ping"
    second.received(response(wait2.req.rid, payload={"version": 1, "pid": 9}))
    with pytest.raises(StopIteration) as done:
        steps.send(wait2.req.slot.get_nowait())
    assert done.value.value == {"version": 1, "pid": 9}


def test_a_write_is_not_resent_after_the_connection_ends(client):
    conn = MemoryExchange()
    steps = call_steps(client, client._exec_call(
        "update t set n = 1", None, statements=None, isolation=None, db_alias=None,
        result_format="msgpack", timeout_ms=None, tag=None, idempotent=False))
    wait = until_wait(steps, conn)
    conn.fail("the worker closed the connection")
    step = steps.send(wait.req.slot.get_nowait())
    assert isinstance(step, Explain)
    with pytest.raises(WorkerUnavailable, match="not resent because it is not marked idempotent"):
        steps.send(step.lost)
    assert len(conn.requests()) == 1


def test_exchange_routes_interleaved_frames_and_fails_every_waiter():
    conn = MemoryExchange()
    a, b = conn.register(1), conn.register(2)
    data = (response(2, payload={"rows": [[1]]}, more=True) + response(1, payload=ROWS)
            + response(2, payload={"rows": [[2]]}, more=True))
    for i in range(len(data)):
        conn.received(data[i:i + 1])
    assert a.get_nowait().request_id == 1 and a.empty()
    assert [b.get_nowait().more, b.get_nowait().more] == [True, True]
    assert list(conn.pending) == [2]  # the stream is still open; 1 is done
    conn.fail("protocol error: test")
    lost = b.get_nowait()
    assert isinstance(lost, ConnectionLost) and lost.reason == "protocol error: test"
    with pytest.raises(ConnectionLost):
        conn.register(3)

