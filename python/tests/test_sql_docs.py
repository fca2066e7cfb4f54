"""docs/python.md shows every DF1 construct of sql_df1_cases.py with the SQL
it compiles to on PostgreSQL and on SQLite. The block is generated from the
cases, so this test fails when the code and the docs disagree; run it with
MOLT_SQL_WRITE_DOCS=1 to rewrite the block."""

import os
import pathlib

from sql_df1_cases import CASES, build

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "python.md"
BEGIN = ("<!-- generated from python/tests/sql_df1_cases.py by python/tests/test_sql_docs.py; "
         "MOLT_SQL_WRITE_DOCS=1 rewrites it -->")
END = "<!-- end of the generated molt_sql constructs -->"


def _sql(dialect, q):
    sql, params = q.compile(dialect)
    return sql + (f"\n-- params: {params!r}" if params else "")


def generated():
    out = [BEGIN]
    section = None
    for case in CASES:
        if case.section != section:
            section = case.section
            out += ["", f"#### {section}"]
        q = build(case)
        pg, lite = _sql("postgres", q), _sql("sqlite", q)
        out += ["", f"`{case.name}`", "", "```python", case.code, "```", "", "```sql"]
        if pg == lite:
            out += ["-- PostgreSQL and SQLite", pg]
        else:
            out += ["-- PostgreSQL", pg, "-- SQLite", lite]
        out.append("```")
    out += ["", END]
    return "\n".join(out)


def test_docs_show_what_each_construct_compiles_to():
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"{DOC} lacks the generated block's markers"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    want = head + generated() + tail
    if os.environ.get("MOLT_SQL_WRITE_DOCS") == "1":
        DOC.write_text(want)
    assert text == want, "docs/python.md is out of date: run this test with MOLT_SQL_WRITE_DOCS=1"
