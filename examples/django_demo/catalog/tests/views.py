"""Views for the status-mapping tests: raw SQL through @molt_offload."""
from django.db import connection

from molt_django_adapter.views import Pairs, Rows, molt_offload

# values that look like the payload's own keys, in column names and strings
TRICKY_TEXT = '","rows":[],"row_count":9,"truncated":true}]'
TRICKY_SQL = ('SELECT $1 AS "rows", \'{"row_count":1}\' AS "row_count", 41 AS id '
              'UNION ALL SELECT $1, \'x\', 42 UNION ALL SELECT $1, \'y\', 43')


def slow_sql():
    if connection.vendor == "postgresql":
        return "SELECT pg_sleep(5) AS slept"
    # a CPU-bound statement of minutes; the worker interrupts it on cancel/timeout
    return ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000000) "
            "SELECT max(x) AS m FROM c")


CASES = {
    "fast": lambda: ("SELECT 1 AS one", []),
    "slow": lambda: (slow_sql(), []),
    "bad_params": lambda: ("SELECT $1 AS a", []),
    "db_error": lambda: ("SELECT secret FROM no_such_table_x7 WHERE pw = 'hunter2'", []),
}


@molt_offload(timeout_ms=400)
def short_deadline(request, case):
    return Rows(CASES[case]())


@molt_offload(timeout_ms=20000)
def long_deadline(request, case):
    return Rows(CASES[case]())


@molt_offload(timeout_ms=20000, busy_status=503)
def long_deadline_busy503(request, case):
    return Rows(CASES[case]())


@molt_offload(timeout_ms=20000)
async def long_deadline_async(request, case):
    return Rows(CASES[case]())


@molt_offload
def tricky(request):
    page = Rows((TRICKY_SQL, [TRICKY_TEXT]), max_rows=2)
    return {"items": page, "next": page.next_cursor("id"), "meta": {"n": 2, "pairs": Pairs(
        ("SELECT $1 AS k, 1 AS v", [TRICKY_TEXT]))}}
