"""manage.py molt_worker: the flags and config it derives from DATABASES and
MOLT_DB, and a worker it starts that answers on the test database."""
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.core.management import call_command
from django.db import connection
from django.test import TransactionTestCase, override_settings
from django.utils import timezone

from molt_db_adapter import MoltClient

from catalog.models import Seller
from molt_django_adapter.management.commands.molt_worker import mask_passwords

from .worker import wait_ready

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


class MoltWorkerCommand(TransactionTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="molt-cmd-")
        self.sock = os.path.join(self.dir, "w.sock")

    def printed(self, **molt):
        out = io.StringIO()
        with override_settings(MOLT_DB={"SOCKET": self.sock, "WORKER_BIN": "/opt/molt/bin/molt_worker", **molt}):
            call_command("molt_worker", "--print", "--", "--log-requests", stdout=out)
        return out.getvalue()

    def test_print_derives_flags_and_config_from_settings(self):
        out = self.printed(POOL={"default": {"max_conns": 3, "max_wait_ms": 250}}, ALLOW_WRITE=["default"])
        argv, rest = out.split("\n", 1)
        self.assertEqual(argv, f"/opt/molt/bin/molt_worker --socket {self.sock} --config {self.sock}.conf --log-requests")
        self.assertIn(f"--- {self.sock}.conf\n[db default]\n", rest)
        self.assertIn("max_conns = 3\nmax_wait_ms = 250\nallow_write = true\n", rest)
        dsn = next(ln for ln in rest.splitlines() if ln.startswith("dsn = "))
        name = connection.settings_dict["NAME"]
        if connection.vendor == "sqlite":
            self.assertEqual(dsn, f"dsn = sqlite://{os.path.abspath(name)}")
        else:
            self.assertIn(f"dbname='{name}'", dsn)
            self.assertIn(f"options='-c TimeZone={connection.timezone_name}'", dsn)

    def test_without_pool_settings_nothing_extra(self):
        rest = self.printed().split("\n", 1)[1]
        self.assertNotIn("max_conns", rest)
        self.assertNotIn("allow_write", rest)

    def test_passwords_are_masked_when_printed(self):
        self.assertEqual(mask_passwords("host='h' password='s3 \\'x' user=u password=plain"),
                         "host='h' password=*** user=u password=***")

    def test_started_worker_answers_on_the_test_database(self):
        Seller.objects.create(name="a", email="a@example.com", joined_at=timezone.now())
        Seller.objects.create(name="b", email="b@example.com", joined_at=timezone.now())
        env = dict(os.environ)
        name = connection.settings_dict["NAME"]
        if connection.vendor == "sqlite":
            env["MOLT_DEMO_SQLITE"] = str(name)
        else:  # the same server, the test database
            d = connection.settings_dict
            env["MOLT_DEMO_PG_DSN"] = f"postgresql://{d['USER']}@{d['HOST']}:{d['PORT']}/{name}"
        proc = subprocess.Popen([sys.executable, str(MANAGE), "molt_worker", "--socket", self.sock],
                                env=env, stderr=subprocess.PIPE)
        try:
            wait_ready(self.sock, proc)
            self.assertEqual(os.stat(self.sock + ".conf").st_mode & 0o777, 0o600)
            with MoltClient(socket_path=self.sock) as c:
                self.assertEqual(c.query("SELECT count(*) AS n FROM catalog_seller").rows, [(2,)])
                if connection.vendor == "postgresql":
                    tz = c.query("SELECT current_setting('TimeZone') AS tz").rows[0][0]
                    self.assertEqual(tz, connection.timezone_name)
                # SIGHUP reaches the worker (it reloads) and kills neither
                proc.send_signal(signal.SIGHUP)
                time.sleep(0.5)
                self.assertIsNone(proc.poll())
                self.assertEqual(c.query("SELECT count(*) AS n FROM catalog_seller").rows, [(2,)])
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(15), 0)
            err = proc.stderr.read().decode()
            self.assertIn("reloaded", err, err[-500:])
            self.assertFalse(os.path.exists(self.sock + ".conf"))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
