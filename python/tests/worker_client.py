"""Test helper: start a real molt_worker and speak the IPC contract to it.

The worker binary is $MOLT_WORKER_BIN, else build/molt_worker (what `make
test` builds). Frames: 4-byte little-endian length + one MsgPack map.
"""
import os
import select
import socket
import struct
import subprocess
import tempfile
import time

import msgpack
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER_BIN = os.environ.get("MOLT_WORKER_BIN") or os.path.join(
    os.environ.get("MOLT_BUILD_DIR") or os.path.join(ROOT, "build"), "molt_worker")
# MOLT_WORKER_BIN is molt_host_bridge: the host ABI behind the stdio
# contract (scripts/test.sh, stage pytest-host); what only the worker's
# process has (its socket, signals, the metrics endpoint) is skipped
HOST_BRIDGE = os.path.basename(WORKER_BIN) == "molt_host_bridge"


def skip_on_host_bridge(why):
    """Skips the calling test when the worker is the host bridge."""
    if HOST_BRIDGE:
        import pytest
        pytest.skip("host bridge: " + why)


def frame(obj):
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack("<I", len(body)) + body


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pack_payload(obj):
    return msgpack.packb(obj, use_bin_type=True)


class Conn:
    """One client connection (stdio pipes or a socket) with a frame reader."""

    def __init__(self, rfile_fd, write):
        self.fd = rfile_fd
        self._write = write
        self.buf = b""
        self.next_id = 1

    def send_raw(self, data):
        self._write(data)

    def send(self, obj):
        self._write(frame(obj))

    def _read_some(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            raise TimeoutError("no response from the worker")
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            raise EOFError("worker closed the connection")
        self.buf += chunk

    def recv(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack("<I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    body = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return msgpack.unpackb(body, raw=False, timestamp=3)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no response from the worker")
            self._read_some(left)

    def at_eof(self, timeout=5.0):
        try:
            self._read_some(timeout)
        except EOFError:
            return True
        return False

    def request(self, entry, payload=None, rid=None, **extra):
        if rid is None:
            rid = self.next_id
            self.next_id += 1
        env = {"request_id": rid, "entry": entry}
        if payload is not None:
            env["payload"] = pack_payload(payload)
        env.update(extra)
        self.send(env)
        return rid

    def call(self, entry, payload=None, timeout=30.0, **extra):
        """Sends one request and returns its final frame (parts in .parts)."""
        rid = self.request(entry, payload, **extra)
        parts = []
        while True:
            resp = self.recv(timeout)
            assert resp["request_id"] == rid, resp
            if resp.get("more"):
                parts.append(resp)
                continue
            resp["parts"] = parts
            return resp

    def query(self, sql, params=None, entry="db_query", **kw):
        payload = {"sql": sql}
        if params is not None:
            payload["params"] = params
        timeout_ms = kw.pop("timeout_ms", None)
        payload.update(kw)
        extra = {"timeout_ms": timeout_ms} if timeout_ms else {}
        return self.call(entry, payload, **extra)


def decode(resp):
    """The payload of an Ok response, decoded per its codec."""
    import json
    assert resp["status"] == "Ok", resp
    if resp["codec"] == "json":
        return json.loads(resp["payload"])
    if resp["codec"] == "msgpack":
        return msgpack.unpackb(resp["payload"], raw=False, timestamp=3)
    return resp["payload"]


class Worker:
    """A molt_worker process; use as a context manager. PostgreSQL aliases
    get allow_privileged_role (the harness's MOLT_TEST_DSN is a superuser)
    unless privileged=False."""

    def __init__(self, dbs, *args, stdio=True, socket_path=None, env=None, privileged=True):
        self.args = [WORKER_BIN]
        for alias, dsn in dbs.items():
            self.args += ["--db", f"{alias}={dsn}"]
            if privileged and not dsn.startswith("sqlite:"):
                self.args += ["--pool", f"{alias}:allow_privileged_role=true"]
        self.args += list(args)
        if not stdio:
            skip_on_host_bridge("a socket is molt_worker's transport; the host "
                                "takes requests through molt_db_host_submit")
        self.stdio = stdio
        self.tmp = None
        if not stdio:
            if socket_path is None:
                self.tmp = tempfile.mkdtemp(prefix="molt-w-")
                socket_path = os.path.join(self.tmp, "w.sock")
            self.socket_path = socket_path
            self.args += ["--socket", socket_path]
        else:
            self.args += ["--stdio"]
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.conn = None

    def start(self):
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.PIPE if self.stdio else subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.stdio else subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=self.env)
        if self.stdio:
            def write(data):
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            self.conn = Conn(self.proc.stdout.fileno(), write)
        else:
            deadline = time.monotonic() + 10
            while not os.path.exists(self.socket_path):
                if self.proc.poll() is not None:
                    raise RuntimeError("worker exited: " + self.proc.stderr.read().decode())
                if time.monotonic() > deadline:
                    raise RuntimeError("worker socket did not appear")
                time.sleep(0.01)
            self.conn = self.connect()
        return self

    def connect(self):
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket_path)
                break
            except (ConnectionRefusedError, FileNotFoundError):
                # bound but not yet listening
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        c = Conn(s.fileno(), s.sendall)
        c.sock = s
        return c

    def stop(self, timeout=10):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if self.stdio:
                try:
                    self.proc.stdin.close()
                except BrokenPipeError:
                    pass
            else:
                self.proc.terminate()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self.stderr = self.proc.stderr.read().decode(errors="replace")
        for f in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if f:
                try:
                    f.close()
                except BrokenPipeError:
                    pass
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        rc = self.stop()
        if exc[0] is None:
            assert rc == 0, f"worker exit {rc}: {self.stderr}"


def pg_client_cmd(*extra):
    """The command line for a molt_db_adapter client's worker on the test
    PostgreSQL (MOLT_TEST_DSN) over stdio; the harness's role is a
    superuser, so allow_privileged_role."""
    return [WORKER_BIN, "--stdio", "--db", f"default={os.environ.get('MOLT_TEST_DSN')}",
            "--pool", "default:allow_privileged_role=true", *extra]


#: skip marks for tests of a client on the worker and the test PostgreSQL
NEEDS_PG_WORKER = [
    pytest.mark.skipif(not os.path.exists(WORKER_BIN), reason=f"{WORKER_BIN} is not built"),
    pytest.mark.skipif(not os.environ.get("MOLT_TEST_DSN"),
                       reason="MOLT_TEST_DSN is not set (run under scripts/with_pg.sh)"),
]


def in_process_args(cmd):
    """A worker command line as the in-process client takes it: without the
    program and the transport."""
    return [a for a in list(cmd)[1:] if a != "--stdio"]


def _in_process(base):
    class FromCmd(base):
        """``base`` created from a worker command line (conftest's transport)."""

        def _set_target(self, worker_cmd, socket_path):
            super()._set_target(in_process_args(worker_cmd) if worker_cmd else worker_cmd, socket_path)

    FromCmd.__name__ = base.__name__ + "FromCmd"
    return FromCmd


def _load_in_process():
    from molt_db_adapter import AsyncInProcessClient, InProcessClient

    return _in_process(InProcessClient), _in_process(AsyncInProcessClient)


InProcessFromCmd, AsyncInProcessFromCmd = _load_in_process()
