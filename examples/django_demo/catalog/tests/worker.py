"""A real molt_worker for the tests, started the way `manage.py molt_worker`
starts one (the same argv and config file), on the test databases."""
import os
import subprocess
import tempfile

from demo_procs import unix_listening, wait_until
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


def wait_ready(path: str, proc: subprocess.Popen) -> None:
    """Until the worker on path answers a ping."""
    def ping():
        with MoltClient(socket_path=path) as c:
            c.ping()
    wait_until(lambda: (unix_listening(path), ping()), proc, "molt_worker", 10.0)
