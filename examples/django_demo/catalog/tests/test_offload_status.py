"""@molt_offload's status mapping through Django's test client against a
real worker: stopped, slow (deadline), killed mid-request, busy, bad input,
database error; and an ASGI client that disconnects cancels the query."""
import asyncio
import json
import threading
import time

from django.core.asgi import get_asgi_application
from django.db import connection
from django.test import TransactionTestCase, override_settings

from .worker import Worker

LEAKS = ["no_such_table", "hunter2", "SELECT", "Traceback", "sqlite", "postgresql://", "password", "File \""]


@override_settings(ROOT_URLCONF="catalog.tests.urls")
class OffloadStatus(TransactionTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.worker = Worker()

    @classmethod
    def tearDownClass(cls):
        cls.worker.stop()
        super().tearDownClass()

    def using(self, worker_or_path):
        path = worker_or_path if isinstance(worker_or_path, str) else worker_or_path.socket
        return override_settings(MOLT_DB={"SOCKET": path, "WORKER_BIN": self.worker.argv[0]})

    def error(self, resp, status, worker_status):
        self.assertEqual(resp.status_code, status, resp.content)
        self.assertEqual(resp["Content-Type"], "application/json")
        body = json.loads(resp.content)
        self.assertEqual(body["error"]["status"], worker_status)
        for leak in LEAKS + [str(connection.settings_dict["NAME"])]:
            self.assertNotIn(leak.lower(), resp.content.decode().lower())
        return body

    def test_fast_query_is_ok(self):
        with self.using(self.worker):
            r = self.client.get("/t/short/fast")
        self.assertEqual((r.status_code, r.content), (200, b'[{"one":1}]'))

    def test_spliced_body_with_values_that_look_like_payload_keys(self):
        from .views import TRICKY_TEXT
        with self.using(self.worker):
            r = self.client.get("/t/tricky")
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(json.loads(r.content), {
            "items": [{"rows": TRICKY_TEXT, "row_count": '{"row_count":1}', "id": 41},
                      {"rows": TRICKY_TEXT, "row_count": "x", "id": 42}],
            "next": 42, "meta": {"n": 2, "pairs": {TRICKY_TEXT: 1}}})

    def test_worker_stopped_is_503(self):
        with self.using(self.worker.dir + "/nobody-listens.sock"):
            r = self.client.get("/t/short/fast")
        self.error(r, 503, "WorkerUnavailable")
        self.assertEqual(r["Retry-After"], "1")

    def test_slow_query_is_504_and_the_worker_stops_it(self):
        with self.using(self.worker):
            t0 = time.monotonic()
            r = self.client.get("/t/short/slow")
            self.assertLess(time.monotonic() - t0, 2.5)
            self.error(r, 504, "Timeout")
            # the worker serves again once the interrupted statement has
            # handed its connection back (a moment later on a loaded machine;
            # the fast query's own deadline is 400 ms)
            deadline = time.monotonic() + 5
            while (code := self.client.get("/t/short/fast").status_code) != 200 \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(code, 200)
        self.assertGreaterEqual(self.worker.stats()["worker"]["timeouts"], 1)

    def test_worker_killed_mid_request_is_503(self):
        w = Worker()
        try:
            threading.Timer(0.5, w.kill).start()
            with self.using(w):
                t0 = time.monotonic()
                r = self.client.get("/t/long/slow")
            self.assertLess(time.monotonic() - t0, 4.0)
            self.error(r, 503, "WorkerUnavailable")
        finally:
            w.stop()

    def test_busy_is_429_or_the_configured_503(self):
        w = Worker("--max-inflight", "1")
        try:
            with self.using(w):
                slow = threading.Thread(target=lambda: self.client_class().get("/t/long/slow"))
                slow.start()
                time.sleep(0.5)
                r = self.client.get("/t/long/fast")
                self.error(r, 429, "Busy")
                self.assertEqual(r["Retry-After"], "1")
                self.error(self.client.get("/t/long503/fast"), 503, "Busy")
                w.kill()  # ends the slow request too
                slow.join(10)
                self.assertFalse(slow.is_alive())
        finally:
            w.stop()

    def test_bad_parameters_are_400(self):
        with self.using(self.worker):
            self.error(self.client.get("/t/short/bad_params"), 400, "InvalidInput")

    def test_database_unreachable_is_503_at_once(self):
        # the worker's alias points at a port nobody listens on: the connect
        # error (ConnectionFailed, SQLSTATE 08001) arrives at once, as 503
        w = Worker("--db", "default=postgresql://molt@127.0.0.1:1/molt_test",
                   "--pool", "default:allow_privileged_role=true")
        try:
            with self.using(w):
                t0 = time.monotonic()
                r = self.client.get("/t/short/fast")
            self.assertLess(time.monotonic() - t0, 2.0)
            self.error(r, 503, "DbError")
            self.assertEqual(r["Retry-After"], "1")
            self.assertIn(b"the database is unavailable", r.content)
        finally:
            w.stop()

    def test_database_error_is_500_without_details(self):
        with self.using(self.worker):
            self.error(self.client.get("/t/short/db_error"), 500, "DbError")

    def test_asgi_disconnect_cancels_the_worker_request(self):
        before = self.worker.stats()["worker"]["cancelled"]
        app = get_asgi_application()
        sent = []

        async def run():
            t0 = time.monotonic()
            calls = 0

            async def receive():
                nonlocal calls
                calls += 1
                if calls == 1:
                    return {"type": "http.request", "body": b"", "more_body": False}
                await asyncio.sleep(0.5)
                return {"type": "http.disconnect"}

            async def send(message):
                sent.append(message)

            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                     "scheme": "http", "path": "/t/async/slow", "raw_path": b"/t/async/slow",
                     "query_string": b"", "root_path": "", "headers": [(b"host", b"testserver")],
                     "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
            await app(scope, receive, send)
            return time.monotonic() - t0

        with self.using(self.worker):
            elapsed = asyncio.run(run())
        self.assertLess(elapsed, 3.0)
        self.assertEqual(sent, [])  # nobody to answer
        deadline = time.monotonic() + 3
        while self.worker.stats()["worker"]["cancelled"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.worker.stats()["worker"]["cancelled"], before + 1)
        if connection.vendor == "postgresql":
            # the server-side query is gone too (the worker sent a CancelRequest)
            # (within a second: the CancelRequest is its own connection)
            deadline, running = time.monotonic() + 1.0, None
            while running != 0 and time.monotonic() < deadline:
                with connection.cursor() as cur:
                    cur.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                "AND query LIKE 'SELECT pg_sleep(5)%%'")
                    running = cur.fetchone()[0]
                time.sleep(0.05)
            self.assertEqual(running, 0)
