"""manage.py molt_worker: run molt_worker for this project's databases.

    manage.py molt_worker                  # serve MOLT_DB["SOCKET"] until SIGTERM/SIGINT
    manage.py molt_worker --socket PATH --worker-bin build/molt_worker -- --log-requests
    manage.py molt_worker --print          # the command and config it would run (passwords masked)

The databases come from DATABASES (every alias on a molt backend: DSN with
the connection's session time zone, MOLT_DB["POOL"] settings,
MOLT_DB["ALLOW_WRITE"]; see conf.worker_args; an alias the worker cannot be
given is left out, with a note on stderr). They go into a config file
beside the socket, mode 0600 and removed on exit, so that no password shows
in `ps`. Flags after `--` are passed to the worker as they are.

The command stays the worker's parent: SIGTERM, SIGINT and SIGHUP are
passed on (the worker drains in-flight requests, docs/worker.md) and the
command exits with the worker's status, so a supervisor (systemd, a
Procfile, `gunicorn --preload`'s neighbour) can manage it like the worker.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from molt_django_adapter.conf import Uncarried, molt_settings, worker_args, worker_targets


def worker_config(args: list[str]) -> str:
    """The [db ALIAS] sections of a worker config file for worker_args()."""
    sections: dict[str, list[str]] = {}
    it = iter(args)
    for flag in it:
        value = next(it)
        if flag == "--db":
            alias, dsn = value.split("=", 1)
            sections.setdefault(alias, []).insert(0, f"dsn = {dsn}")
        elif flag == "--pool":
            alias, setting = value.split(":", 1)
            name, v = setting.split("=", 1)
            sections.setdefault(alias, []).append(f"{name} = {v}")
        elif flag == "--db-replica":
            alias, dsn = value.split("=", 1)
            sections.setdefault(alias, []).append(f"replica = {dsn}")
        elif flag == "--allow-write":
            sections.setdefault(value, []).append("allow_write = true")
        else:
            raise CommandError(f"unexpected worker flag {flag!r} from worker_args()")
    return "".join(f"[db {alias}]\n" + "".join(line + "\n" for line in lines) + "\n"
                   for alias, lines in sections.items())


def mask_passwords(text: str) -> str:
    return re.sub(r"(password=)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text)


def worker_invocation(socket_path: str, worker_bin: str, extra: list[str]) -> tuple[list[str], str, str]:
    """(argv, config path, config text) for serving socket_path."""
    config_path = socket_path + ".conf"
    argv = [worker_bin, "--socket", socket_path, "--config", config_path, *extra]
    return argv, config_path, worker_config(worker_args())


class Command(BaseCommand):
    help = "Run molt_worker on a Unix socket for the databases in DATABASES (and MOLT_DB)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--socket", help="Unix socket path (default MOLT_DB['SOCKET'])")
        parser.add_argument("--worker-bin", help="the molt_worker executable (default MOLT_DB['WORKER_BIN'])")
        parser.add_argument("--print", action="store_true", dest="print_only",
                            help="print the command line and config file, then exit")
        parser.add_argument("worker_flags", nargs="*", help="flags after -- go to the worker unchanged")

    def handle(self, *, socket: str | None, worker_bin: str | None, print_only: bool,
               worker_flags: list[str], **_: Any) -> None:
        conf = molt_settings()
        socket_path = socket or conf["SOCKET"]
        if not socket_path:
            raise CommandError("no socket: set MOLT_DB['SOCKET'] or pass --socket PATH")
        socket_path = os.path.abspath(socket_path)
        argv, config_path, config = worker_invocation(socket_path, worker_bin or conf["WORKER_BIN"], worker_flags)
        for alias, target in worker_targets().items():
            if isinstance(target, Uncarried):
                self.stderr.write(f"{alias}: not served ({target}); its reads go through the ORM")
        if not config:
            raise CommandError("no database in DATABASES uses a molt_django_adapter backend")
        if print_only:
            self.stdout.write(" ".join(argv))
            self.stdout.write(f"--- {config_path}\n" + mask_passwords(config))
            return
        os.makedirs(os.path.dirname(socket_path), exist_ok=True)
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(config)
        try:
            sys.exit(self._run(argv))
        finally:
            os.unlink(config_path)

    def _run(self, argv: list[str]) -> int:
        try:
            proc = subprocess.Popen(argv)
        except OSError as e:
            raise CommandError(f"cannot start {argv[0]!r}: {e}") from None
        forward = lambda signum, frame: proc.send_signal(signum)  # noqa: E731
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, forward)
        code = proc.wait()
        return code if code >= 0 else 128 - code
