"""A real molt_worker for the tests, started the way `manage.py molt_worker`
starts one (the same argv and config file), on the test databases."""
import os
import socket
import subprocess
import tempfile
import time

from molt_db_adapter import MoltClient

from molt_django_adapter.conf import molt_settings
from molt_django_adapter.management.commands.molt_worker import worker_invocation


class Worker:
    def __init__(self, *extra: str):
        self.dir = tempfile.mkdtemp(prefix="molt-demo-")
        self.socket = os.path.join(self.dir, "w.sock")
        self.argv, config_path, config = worker_invocation(self.socket, molt_settings()["WORKER_BIN"], list(extra))
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(config)
        self.log = open(os.path.join(self.dir, "worker.log"), "wb")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=self.log)
        wait_ready(self.socket, self.proc)

    def stats(self) -> dict:
        with MoltClient(socket_path=self.socket) as c:
            return c.stats()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


def wait_ready(path: str, proc: subprocess.Popen, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {proc.returncode}")
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.close()
            with MoltClient(socket_path=path) as c:
                c.ping()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the worker did not answer in time")
