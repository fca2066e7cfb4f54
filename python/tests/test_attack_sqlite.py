"""Hostile clients of molt_worker's SQLite backend.

Every worker here has one SQLite connection (sqlite_conns=1), so attacker
and victim share it: whatever an attack leaves on the connection, the next
request meets. Each case asserts what the victim reads, what the victim's
write does, or what the file holds (read with Python's sqlite3), not only
the status code. docs/worker.md ("What a SQLite request may do") is the
policy these tests hold the worker to.
"""
import os
import sqlite3
import time

import pytest

from worker_client import HOST_BRIDGE, Worker, decode, WORKER_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(WORKER_BIN),
                                reason=f"{WORKER_BIN} is not built")

READ_REFUSED = "25006"
WRITE_REFUSED = "42501"


@pytest.fixture
def dbfile(tmp_path):
    path = tmp_path / "victim.db"
    con = sqlite3.connect(path)
    con.executescript("""
        create table items(id integer primary key, name text not null);
        insert into items(name) values ('apple'), ('pear'), ('fig');
        create table stock(id integer primary key, qty integer not null check (qty >= 0));
        create table parent(id integer primary key);
        create table child(id integer primary key,
                           parent_id integer not null references parent(id));
        insert into parent values (1);
        create virtual table docs using fts4(body);
        insert into docs values ('hello world'), ('goodbye world');
        create virtual table places using rtree(id, x0, x1);
        insert into places values (1, 0, 10);
        create virtual table notes using fts5(body);
        insert into notes values ('hello fts5');
    """)
    con.commit()
    con.close()
    return path


@pytest.fixture
def other(tmp_path):
    """Another database file on the same machine, holding a secret."""
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.executescript("create table secret(v text); insert into secret values ('top secret');")
    con.commit()
    con.close()
    return path


def worker(dbfile, *extra):
    return Worker({"default": f"sqlite://{dbfile}"}, "--allow-write", "default",
                  "--pool", "default:sqlite_conns=1", *extra)


@pytest.fixture
def w(dbfile):
    with worker(dbfile) as wk:
        yield wk


def query(c, sql, params=None, **kw):
    if params is not None:
        params = {"mode": "positional", "values": params}
    return c.query(sql, params, **kw)


def exec_(c, sql=None, params=None, **kw):
    kw["allow_write"] = True
    if sql is not None:
        kw["sql"] = sql
    if params is not None:
        kw["params"] = {"mode": "positional", "values": params}
    return c.call("db_exec", kw)


def rows(r):
    return decode(r)["rows"]


def refused(r, sqlstate):
    assert r["status"] == "DbError", r
    assert r["sqlstate"] == sqlstate, r


def spellings(sql):
    """The same statement in the spellings a filter on text would miss:
    case, comments and whitespace before the keyword, a trailing `;`."""
    return [sql, sql.upper(), sql.title(),
            "/* c */ -- line\n\t " + sql,
            "\n  " + sql.replace(" ", "  \n ") + " ;  "]


def file_query(dbfile, sql):
    con = sqlite3.connect(dbfile)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# ---- what every victim request checks after an attack ------------------------

# connection settings a client could want to change, with the value an
# attacker would set; their values are read before and after each attack
SETTINGS = {
    "foreign_keys": "0", "query_only": "0", "writable_schema": "1",
    "locking_mode": "exclusive", "ignore_check_constraints": "1",
    "max_page_count": "1", "hard_heap_limit": "200000", "soft_heap_limit": "100",
    "trusted_schema": "1", "cache_size": "1", "mmap_size": "1000000",
    "recursive_triggers": "0", "busy_timeout": "0", "temp_store": "2",
    "synchronous": "0", "journal_mode": "delete", "automatic_index": "0",
    "reverse_unordered_selects": "1", "threads": "4", "analysis_limit": "1",
    "cell_size_check": "1", "secure_delete": "0", "wal_autocheckpoint": "1",
    "journal_size_limit": "0", "legacy_alter_table": "1", "read_uncommitted": "1",
    "defer_foreign_keys": "1", "cache_spill": "0", "checkpoint_fullfsync": "1",
    "fullfsync": "1", "user_version": "5", "application_id": "7",
    "schema_version": "99",
}
# set-only PRAGMAs (nothing to read back; the effect is checked elsewhere)
SET_ONLY = {"case_sensitive_like": "1", "full_column_names": "1",
            "short_column_names": "0", "count_changes": "1",
            "empty_result_callbacks": "1", "temp_store_directory": "'/tmp'",
            "data_store_directory": "'/tmp'", "encoding": "'UTF-16'",
            "page_size": "512", "auto_vacuum": "1", "shrink_memory": None,
            "optimize": None, "wal_checkpoint": None, "incremental_vacuum": None}


def read_settings(c):
    got = {}
    for name in SETTINGS:
        # SQLite does not count reading journal_mode as read-only
        send = exec_ if name == "journal_mode" else query
        got[name] = rows(send(c, f"pragma {name}"))
    return got


def victim_checks(c, dbfile):
    """A victim on the shared connection after an attack: its reads see the
    real data, its writes still meet the CHECK and foreign key constraints,
    LIKE is still case-insensitive, and nothing is left in TEMP."""
    assert rows(query(c, "select name from items order by id")) == [
        ["apple"], ["pear"], ["fig"]]
    assert rows(query(c, "select 'ABC' like 'abc'")) == [[1]]
    assert rows(query(c, "select count(*) from sqlite_temp_master")) == [[0]]
    assert rows(query(c, "select name from pragma_database_list "
                         "where name not in ('main', 'temp')")) == []
    assert rows(query(c, "select count(*) from docs where docs match 'world'")) == [[2]]
    refused(exec_(c, "insert into stock(qty) values (-1)"), "23514")
    r = exec_(c, "insert into child(parent_id) values (42)")
    assert r["status"] == "DbError" and r["sqlstate"] == "23503", r
    r = exec_(c, "insert into items(name) values ('victim')")
    assert r["status"] == "Ok", r
    # committed: another connection sees it (no transaction was left open)
    assert file_query(dbfile, "select count(*) from items where name = 'victim'") == [(1,)]
    assert exec_(c, "delete from items where name = 'victim'")["status"] == "Ok"
    assert file_query(dbfile, "select count(*) from stock") == [(0,)]
    assert file_query(dbfile, "select count(*) from child") == [(0,)]
    assert file_query(dbfile, "pragma integrity_check") == [("ok",)]
    # the pragma hard_heap_limit is process-wide: molt_worker's setting
    # (sqlite_heap_limit_bytes), none in the in-process host
    assert rows(query(c, "pragma hard_heap_limit")) == [[0 if HOST_BRIDGE else 1 << 30]]


# ---- fts3_tokenizer: an address leak and a crash ---------------------------

FTS3_TOKENIZER = [
    ("select hex(fts3_tokenizer('simple'))", None),
    ("select fts3_tokenizer('porter')", None),
    ("select (select fts3_tokenizer('simple')) is not null", None),
    ("select fts3_tokenizer('simple', x'4141414141414141')", None),
    ("select fts3_tokenizer($1, $2)", ["simple", b"AAAAAAAA"]),
    ("select fts3_tokenizer('simple', $1)", [b"AAAAAAAA"]),
    ("with t(n) as (select 'simple') select fts3_tokenizer(n, zeroblob(8)) from t", None),
]


@pytest.mark.parametrize("sql,params", FTS3_TOKENIZER)
def test_fts3_tokenizer_refused(w, dbfile, sql, params):
    c = w.conn
    for s in spellings(sql):
        refused(query(c, s, params), READ_REFUSED)
        refused(exec_(c, s, params), WRITE_REFUSED)
    # the next MATCH on the connection used to crash the worker
    assert rows(query(c, "select count(*) from docs where docs match 'hello'")) == [[1]]
    assert w.proc.poll() is None
    victim_checks(c, dbfile)


def test_fts3_tokenizer_in_a_trigger_or_view(w, dbfile):
    """A writer hides the call in the schema, where the victim's request
    would run it: refused when the victim's statement is prepared."""
    c = w.conn
    # (SQLite itself refuses fts3_tokenizer in the schema: "unsafe use")
    assert exec_(c, "create trigger evil after insert on items begin "
                    "select fts3_tokenizer('simple', x'4141414141414141'); end")["status"] == "Ok"
    assert exec_(c, "insert into items(name) values ('x')")["status"] == "DbError"
    assert exec_(c, "drop trigger evil")["status"] == "Ok"
    assert exec_(c, "create view leak as select fts3_tokenizer('simple') as p")["status"] == "Ok"
    r = query(c, "select hex(p) from leak")
    assert r["status"] == "DbError" and "fts3_tokenizer" in r["error"], r
    assert exec_(c, "drop view leak")["status"] == "Ok"
    assert rows(query(c, "select count(*) from docs where docs match 'hello'")) == [[1]]
    victim_checks(c, dbfile)


def test_load_extension_refused(w, dbfile):
    c = w.conn
    for s in spellings("select load_extension('/usr/lib/x86_64-linux-gnu/libm.so.6')"):
        refused(query(c, s), READ_REFUSED)
        refused(exec_(c, s), WRITE_REFUSED)
    refused(query(c, "select load_extension($1, $2)", ["libm.so.6", "cos"]), READ_REFUSED)
    victim_checks(c, dbfile)


# ---- PRAGMAs that change the connection -------------------------------------

def pragma_forms(name, value):
    if value is None:
        return [f"pragma {name}", f"PRAGMA main.{name.upper()}"]
    return [f"pragma {name}={value}", f"PRAGMA {name.upper()} = {value}",
            f"PrAgMa main.{name}({value})", f'pragma "{name}" = {value}',
            f"/* x */ pragma\n  temp.{name} = {value}"]


@pytest.mark.parametrize("entry", ["db_query", "db_exec"])
def test_setting_pragmas_refused(w, dbfile, entry):
    c = w.conn
    before = read_settings(c)
    send, code = ((query, READ_REFUSED) if entry == "db_query"
                  else (exec_, WRITE_REFUSED))
    attacks = dict(SETTINGS, **SET_ONLY)
    if entry == "db_exec":
        # kept in the database file, maintenance: a writer may (see below)
        for name in ("user_version", "application_id", "optimize",
                     "wal_checkpoint", "incremental_vacuum"):
            attacks.pop(name)
    for name, value in attacks.items():
        for sql in pragma_forms(name, value):
            r = send(c, sql)
            refused(r, code)
            assert name.lower() in r["error"].lower(), r
        # as a table-valued function
        r = send(c, f"select * from pragma_{name}({value or 1})")
        assert r["status"] != "Ok", (name, r)
    assert read_settings(c) == before
    assert file_query(dbfile, "pragma user_version") == [(0,)]
    assert file_query(dbfile, "pragma journal_mode") == [("wal",)]
    victim_checks(c, dbfile)
    # the same connection still answers with the column names it did
    d = decode(query(c, "select i.name from items i where id = 1"))
    assert d["columns"] == ["name"]


def test_ignore_check_constraints_does_not_reach_the_victim(w, dbfile):
    """The reported attack: a reader's ignore_check_constraints=1, then
    another client's db_exec inserted a row violating a CHECK."""
    c = w.conn
    for sql in spellings("pragma ignore_check_constraints=1"):
        refused(query(c, sql), READ_REFUSED)
        refused(exec_(c, sql), WRITE_REFUSED)
        refused(exec_(c, "insert into stock(qty) values (-5)"), "23514")
    assert file_query(dbfile, "select count(*) from stock where qty < 0") == [(0,)]


def test_foreign_keys_stay_enforced(w, dbfile):
    c = w.conn
    assert exec_(c, "insert into child(parent_id) values (1)")["status"] == "Ok"
    for sql in spellings("pragma foreign_keys = off"):
        refused(query(c, sql), READ_REFUSED)
        refused(exec_(c, sql), WRITE_REFUSED)
        refused(exec_(c, "insert into child(parent_id) values (99)"), "23503")
        refused(exec_(c, "delete from parent"), "23503")
    assert file_query(dbfile, "select count(*) from parent") == [(1,)]


def test_several_statements_in_one_sql(w, dbfile):
    c = w.conn
    for sql in ["select 1; pragma foreign_keys=0",
                "select 1;pragma ignore_check_constraints=1;",
                "select 1 /* ; */; attach database ':memory:' as m"]:
        assert query(c, sql)["status"] != "Ok"
        assert exec_(c, sql)["status"] != "Ok"
    victim_checks(c, dbfile)


def test_read_pragmas_allowed(w, dbfile):
    """Reads stay possible: settings without a value, the schema PRAGMAs and
    their table-valued functions (the Django adapter reads
    pragma_function_list)."""
    c = w.conn
    assert rows(query(c, "PRAGMA FOREIGN_KEYS")) == [[1]]
    assert rows(query(c, "pragma query_only")) == [[1]]
    assert [x[1] for x in rows(query(c, "pragma table_info(items)"))] == ["id", "name"]
    assert [x[0] for x in rows(query(c, "select name from pragma_table_info('items')"))] == [
        "id", "name"]
    assert rows(query(c, "select count(*) > 100 from pragma_function_list")) == [[1]]
    # Django's functions only on an alias that asks for them
    assert rows(query(c, "select count(*) from pragma_function_list "
                         "where name = 'django_date_extract'")) == [[0]]
    assert rows(query(c, "pragma foreign_key_list(child)"))[0][2] == "parent"
    assert rows(query(c, "pragma integrity_check")) == [["ok"]]
    assert rows(query(c, "pragma user_version")) == [[0]]
    assert query(c, "pragma index_list(items)")["status"] == "Ok"
    # reading virtual tables runs their own internal statements
    assert rows(query(c, "select id from places where x0 >= 0")) == [[1]]
    assert rows(query(c, "select count(*) from docs where docs match 'hello'")) == [[1]]


def test_explain_compiles_what_it_explains(w, dbfile):
    """EXPLAIN prepares the statement it explains, and a PRAGMA takes
    effect when prepared: the same check applies."""
    c = w.conn
    for sql in ["explain pragma foreign_keys=0", "EXPLAIN pragma ignore_check_constraints = 1",
                "explain attach ':memory:' as m", "explain select fts3_tokenizer('simple')",
                "explain query plan select fts3_tokenizer('simple')"]:
        refused(query(c, sql), READ_REFUSED)
        refused(exec_(c, sql), WRITE_REFUSED)
    assert query(c, "explain query plan select * from items where id = 1")["status"] == "Ok"
    victim_checks(c, dbfile)


def test_virtual_tables_keep_working(w, dbfile):
    """FTS4, FTS5 and R*Tree run statements of their own (R*Tree prepares
    its writes when a reader opens it): readers read them, writers write
    them, through the authorizer and defensive mode."""
    c = w.conn
    for _ in range(2):
        assert rows(query(c, "select count(*) from docs where docs match 'hello'")) == [[1]]
        assert rows(query(c, "select body from notes where notes match 'fts5'")) == [
            ["hello fts5"]]
        assert rows(query(c, "select id from places where x1 > 5")) == [[1]]
    assert exec_(c, "insert into docs values ('hello again')")["status"] == "Ok"
    assert exec_(c, "insert into notes values ('hello again')")["status"] == "Ok"
    assert exec_(c, "insert into places values (2, 20, 30)")["status"] == "Ok"
    assert exec_(c, "insert into docs(docs) values ('optimize')")["status"] == "Ok"
    assert exec_(c, "insert into notes(notes) values ('optimize')")["status"] == "Ok"
    assert rows(query(c, "select count(*) from docs where docs match 'hello'")) == [[2]]
    assert rows(query(c, "select count(*) from notes where notes match 'hello'")) == [[2]]
    assert rows(query(c, "select id from places where x0 >= 20")) == [[2]]
    assert file_query(dbfile, "select count(*) from notes where notes match 'again'") == [(1,)]
    assert file_query(dbfile, "pragma integrity_check") == [("ok",)]


def test_writer_database_pragmas(w, dbfile):
    """db_exec may set what lives in the database file (user_version,
    application_id) and run maintenance; defer_foreign_keys only inside its
    own transaction, which resets it."""
    c = w.conn
    assert exec_(c, "pragma user_version = 7")["status"] == "Ok"
    assert exec_(c, "PRAGMA main.application_id=42")["status"] == "Ok"
    assert file_query(dbfile, "pragma user_version") == [(7,)]
    assert file_query(dbfile, "pragma application_id") == [(42,)]
    for sql in ["pragma optimize", "pragma wal_checkpoint(passive)", "pragma incremental_vacuum"]:
        assert exec_(c, sql)["status"] == "Ok", sql
        refused(query(c, sql), READ_REFUSED)
    refused(exec_(c, "pragma defer_foreign_keys = 1"), WRITE_REFUSED)
    r = exec_(c, statements=[
        {"sql": "pragma defer_foreign_keys = 1"},
        {"sql": "insert into child(id, parent_id) values (1, 2)"},
        {"sql": "insert into parent values (2)"}])
    assert r["status"] == "Ok", r
    assert rows(query(c, "pragma defer_foreign_keys")) == [[0]]
    assert file_query(dbfile, "select parent_id from child") == [(2,)]


@pytest.mark.parametrize("sql", ["pragma temp.user_version = 1234",
                                 "PRAGMA TEMP.application_id(7)", "pragma temp.optimize",
                                 "pragma temp.wal_checkpoint", "pragma temp.incremental_vacuum"])
def test_writer_pragmas_only_on_main(w, dbfile, sql):
    """TEMP is the connection's, not the request's: a writer may neither set
    a value there (the next client on the connection would read it) nor run
    maintenance on it."""
    c = w.conn
    refused(exec_(c, sql), WRITE_REFUSED)
    assert rows(query(c, "pragma temp.user_version")) == [[0]]
    assert rows(query(c, "pragma temp.application_id")) == [[0]]
    victim_checks(c, dbfile)


# ---- ATTACH, DETACH, VACUUM -----------------------------------------------

def test_attach_refused(w, dbfile, other, tmp_path):
    c = w.conn
    created = tmp_path / "created.db"
    targets = [str(other), str(created), ":memory:", "",
               f"file:{created}?mode=rwc", "file:molt_mem_x?mode=memory&cache=shared"]
    for t in targets:
        for sql in spellings(f"attach database '{t}' as o"):
            refused(query(c, sql), READ_REFUSED)
            refused(exec_(c, sql), WRITE_REFUSED)
        refused(query(c, "attach $1 as o", [t]), READ_REFUSED)
        refused(exec_(c, "attach $1 as o", [t]), WRITE_REFUSED)
        # then read or write it: nothing is attached
        assert query(c, "select v from o.secret")["status"] == "DbError"
        assert exec_(c, "insert into o.secret values ('pwned')")["status"] == "DbError"
        assert exec_(c, statements=[{"sql": f"attach '{t}' as o"},
                                    {"sql": "create table o.x(a)"}])["status"] == "DbError"
    for sql in ["detach main", "detach database temp", "DETACH o"]:
        refused(query(c, sql), READ_REFUSED)
        refused(exec_(c, sql), WRITE_REFUSED)
    assert not created.exists()
    assert file_query(other, "select v from secret") == [("top secret",)]
    victim_checks(c, dbfile)


def test_vacuum_refused(w, dbfile, tmp_path):
    c = w.conn
    out = tmp_path / "copy.db"
    for sql in spellings(f"vacuum into '{out}'") + [f"VACUUM main INTO '{out}'"]:
        refused(query(c, sql), READ_REFUSED)
        refused(exec_(c, sql), WRITE_REFUSED)
    refused(exec_(c, "vacuum into $1", [str(out)]), WRITE_REFUSED)
    assert not out.exists()
    # plain VACUUM attaches a scratch database too: refused, documented
    refused(exec_(c, "vacuum"), WRITE_REFUSED)
    victim_checks(c, dbfile)


# ---- transactions left open -----------------------------------------------

def test_transaction_control_refused(w, dbfile):
    c = w.conn
    for sql in ["begin", "BEGIN IMMEDIATE", "begin exclusive transaction", "commit",
                "end", "rollback", "savepoint a", "release a", "rollback to a"]:
        for s in spellings(sql):
            refused(query(c, s), READ_REFUSED)
            refused(exec_(c, s), WRITE_REFUSED)
    # a COMMIT among statements would split the all-or-nothing batch
    r = exec_(c, statements=[{"sql": "insert into items(name) values ('one')"},
                             {"sql": "commit"},
                             {"sql": "insert into items(name) values ('two')"}])
    refused(r, WRITE_REFUSED)
    assert file_query(dbfile, "select count(*) from items where name in ('one', 'two')") == [
        (0,)]
    victim_checks(c, dbfile)


def test_savepoints_inside_statements(w, dbfile):
    c = w.conn
    r = exec_(c, statements=[
        {"sql": "insert into items(name) values ('kept')"},
        {"sql": "savepoint s"},
        {"sql": "insert into items(name) values ('undone')"},
        {"sql": "rollback to s"},
        {"sql": "release s"}])
    assert r["status"] == "Ok", r
    assert file_query(dbfile, "select name from items where id > 3") == [("kept",)]
    assert exec_(c, "delete from items where name = 'kept'")["status"] == "Ok"
    victim_checks(c, dbfile)


# ---- TEMP objects outliving the request ------------------------------------

TEMP_ATTACKS = [
    "create temp trigger t after insert on items begin delete from items; end",
    "create temporary trigger t before delete on main.items begin select raise(abort, 'x'); end",
    "create trigger temp.t after insert on main.items begin delete from items; end",
    "create temp table items(id integer primary key, name text)",
    "create table temp.items as select 1 as id, 'evil' as name",
    "create temp view items as select 1 as id, 'evil' as name",
    "create view temp.v as select 1",
    "create virtual table temp.v using fts4(x)",
    "create temp table x(a)",
]


@pytest.mark.parametrize("sql", TEMP_ATTACKS)
def test_temp_objects_refused(w, dbfile, sql):
    """A TEMP object stays on the connection: a temp trigger on a main table
    would fire in another client's write, a temp table or view named like a
    main table would shadow it in another client's reads."""
    c = w.conn
    for s in spellings(sql):
        refused(query(c, s), READ_REFUSED)
        refused(exec_(c, s), WRITE_REFUSED)
    r = exec_(c, statements=[{"sql": sql},
                             {"sql": "insert into items(name) values ('x')"}])
    refused(r, WRITE_REFUSED)
    victim_checks(c, dbfile)
    assert file_query(dbfile, "select count(*) from items") == [(3,)]


def test_create_index_in_temp_refused(w, dbfile):
    c = w.conn
    # SQLite's own rule refuses it first
    assert exec_(c, "create index temp.i on items(name)")["status"] == "DbError"
    victim_checks(c, dbfile)


# ---- the schema: writable_schema, shadow tables ----------------------------

def test_writer_cannot_rewrite_the_schema(w, dbfile):
    c = w.conn
    schema = file_query(dbfile, "select name, sql from sqlite_master order by name")
    for sql in spellings("pragma writable_schema = 1"):
        refused(exec_(c, sql), WRITE_REFUSED)
    for sql in ["update sqlite_master set sql = 'create table items(x)' where name = 'items'",
                "delete from sqlite_schema where name = 'stock'",
                "insert into sqlite_master values ('table', 'z', 'z', 0, 'create table z(a)')"]:
        assert exec_(c, sql)["status"] == "DbError", sql
        assert exec_(c, statements=[{"sql": "pragma writable_schema=1"},
                                    {"sql": sql}])["status"] == "DbError"
    # defensive mode: FTS shadow tables are not written directly
    assert exec_(c, "delete from docs_segdir")["status"] == "DbError"
    assert exec_(c, "update docs_content set c0body = 'x'")["status"] == "DbError"
    assert file_query(dbfile, "select name, sql from sqlite_master order by name") == schema
    assert file_query(dbfile, "select count(*) from docs where docs match 'hello'") == [(1,)]
    victim_checks(c, dbfile)


def test_reader_cannot_change_the_schema(w, dbfile):
    c = w.conn
    for sql in ["create table z(a)", "drop table items", "alter table items add column x",
                "create index i on items(name)", "reindex", "analyze",
                "create view v as select 1", "drop view if exists v",
                "create virtual table v using fts4(x)", "insert into items(name) values ('x')",
                "update items set name = 'x'", "delete from items",
                "with d as (select 1) delete from items", "replace into items values (1, 'x')",
                "insert into docs(docs) values ('optimize')"]:
        for s in spellings(sql):
            refused(query(c, s), READ_REFUSED)
    assert file_query(dbfile, "select count(*) from sqlite_master where name in ('z', 'v', 'i')") == [
        (0,)]
    victim_checks(c, dbfile)


# ---- a stream left early -----------------------------------------------------

STREAM_SQL = ("with recursive r(i) as (select 1 union all select i + 1 from r "
              "where i < 2000) select i, name from r, items")


def leave_stream_early(c, chunks=2):
    """As MoltClient.stream(batch_rows=7) when the caller breaks out after
    `chunks` chunks: cancel, then read the stream's end and the cancel's
    answer."""
    rid = c.request("db_query", {"sql": STREAM_SQL, "stream": True, "batch_rows": 7})
    for _ in range(chunks):
        part = c.recv()
        assert part["request_id"] == rid and part.get("more"), part
    cid = c.request("cancel", {"request_id": rid})
    done = set()
    while done != {rid, cid}:
        r = c.recv()
        if r["request_id"] == rid and r.get("more"):
            continue
        done.add(r["request_id"])
        if r["request_id"] == rid:
            assert r["status"] in ("Cancelled", "Ok"), r


def test_stream_left_early_leaves_the_connection_clean(w, dbfile):
    """A stream cancelled between chunks used to leave the read-only
    authorizer on the connection: the next read failed (its own PRAGMA
    query_only was refused) and the next db_exec was "not authorized"."""
    c = w.conn
    for i in range(20):
        leave_stream_early(c, chunks=1 + i % 3)
        r = query(c, "select count(*) from items")
        assert rows(r) == [[3]], (i, r)
        leave_stream_early(c)
        r = exec_(c, "update items set name = name where id = 1")
        assert r["status"] == "Ok", (i, r)
        assert decode(r)["rows_affected"] == 1
    # and the stream's read-only mode did not stay either
    assert exec_(c, "insert into items(name) values ('after')")["status"] == "Ok"
    assert file_query(dbfile, "select count(*) from items where name = 'after'") == [(1,)]


def test_client_stream_left_early(dbfile):
    """The report in the client's terms: leave MoltClient.stream(...,
    batch_rows=7) after two chunks, then query() and execute()."""
    from molt_db_adapter import MoltClient
    cmd = [WORKER_BIN, "--stdio", "--db", f"default=sqlite://{dbfile}",
           "--allow-write", "default", "--pool", "default:sqlite_conns=1"]
    with MoltClient(cmd) as c:
        for i in range(20):
            with c.stream(STREAM_SQL, batch_rows=7) as s:
                for n, _ in enumerate(s.chunks()):
                    if n == 1:
                        break
            assert c.query("select count(*) from items").rows == [(3,)], i
            assert c.execute("update items set name = name where id = 3").rows_affected == 1


def test_stream_failing_midway_leaves_the_connection_clean(w, dbfile):
    c = w.conn
    for _ in range(5):
        r = c.call("db_query", {
            "sql": "with recursive r(i) as (select 1 union all select i + 1 from r "
                   "where i < 100) select i, case when i > 30 "
                   "then abs(-9223372036854775807 - 1) else i end from r",
            "stream": True, "batch_rows": 7})
        assert r["status"] == "DbError" and len(r["parts"]) >= 2, r
        assert exec_(c, "update items set name = name where id = 2")["status"] == "Ok"
        assert rows(query(c, "pragma query_only")) == [[1]]
    victim_checks(c, dbfile)


def test_paused_stream_cancelled_then_writer(dbfile):
    """A stream paused by backpressure (client not reading), then cancelled:
    the connection is clean for the next writer."""
    with worker(dbfile) as wk:
        c = wk.conn
        rid = c.request("db_query", {
            "sql": "with recursive r(i) as (select 1 union all select i + 1 from r "
                   "where i < 100000) select i, randomblob(1000) from r",
            "stream": True, "batch_rows": 100})
        time.sleep(0.3)  # the worker's write queue fills and it pauses
        c.request("cancel", {"request_id": rid})
        seen = set()
        while len(seen) < 2:
            r = c.recv()
            if not r.get("more"):
                seen.add(r["request_id"])
        r = exec_(c, "insert into items(name) values ('after pause')")
        assert r["status"] == "Ok", r
        assert rows(query(c, "select count(*) from items")) == [[4]]


def test_timeout_and_refusal_leave_the_connection_clean(w, dbfile):
    c = w.conn
    slow = ("with recursive r(i) as (select 1 union all select i + 1 from r "
            "where i < 200000000) select count(*) from r")
    for _ in range(3):
        assert query(c, slow, timeout_ms=100)["status"] == "Timeout"
        assert exec_(c, "update items set name = name")["status"] == "Ok"
        refused(query(c, "pragma foreign_keys=0"), READ_REFUSED)
        assert exec_(c, "update items set name = name")["status"] == "Ok"
        refused(exec_(c, "attach ':memory:' as m"), WRITE_REFUSED)
        assert rows(query(c, "select count(*) from items")) == [[3]]
    victim_checks(c, dbfile)


# ---- hardening settings --------------------------------------------------------

def test_value_size_bound(dbfile):
    with worker(dbfile, "--pool", "default:sqlite_max_value_bytes=1000") as wk:
        c = wk.conn
        assert rows(query(c, "select length(zeroblob(1000))")) == [[1000]]
        r = query(c, "select zeroblob(1001)")
        assert r["status"] == "DbError" and r["sqlstate"] == "54000", r
        r = query(c, "select length(group_concat(name, printf('%.500c', 'x'))) from items")
        assert r["status"] == "DbError" and r["sqlstate"] == "54000", r
        r = exec_(c, "insert into items(name) values (hex(zeroblob(600)))")
        assert r["status"] == "DbError" and r["sqlstate"] == "54000", r
    assert file_query(dbfile, "select count(*) from items") == [(3,)]


def test_default_value_size_bound(w):
    r = query(w.conn, "select length(randomblob(100000000))")
    assert r["status"] == "DbError" and r["sqlstate"] == "54000", r


def test_trusted_schema_setting(dbfile):
    """On by default: SQLite 3.40 marks neither its JSON functions (Django's
    JSONField CHECK) nor its virtual tables (a trigger keeping an FTS index
    in step) innocuous. sqlite_trusted_schema=false refuses both."""
    con = sqlite3.connect(dbfile)
    con.executescript("""
        create trigger items_fts after insert on items
        begin insert into docs(body) values (new.name); end;
        create table doc_json(id integer primary key,
                              data text check ((json_valid(data) or data is null)));
    """)
    con.close()
    with worker(dbfile) as wk:
        assert exec_(wk.conn, "insert into items(name) values ('indexed')")["status"] == "Ok"
        assert exec_(wk.conn, "insert into doc_json(data) values ('{}')")["status"] == "Ok"
        refused(exec_(wk.conn, "insert into doc_json(data) values ('{')"), "23514")
        assert rows(query(wk.conn, "select count(*) from docs where docs match 'indexed'")) == [
            [1]]
    with worker(dbfile, "--pool", "default:sqlite_trusted_schema=false") as wk:
        r = query(wk.conn, "select count(*) from items")
        assert r["status"] == "DbError" and "unsafe use of json_valid" in r["error"].lower(), r
        assert exec_(wk.conn, "drop table doc_json")["status"] == "DbError"
    con = sqlite3.connect(dbfile)
    con.execute("drop table doc_json")
    con.commit()
    con.close()
    with worker(dbfile, "--pool", "default:sqlite_trusted_schema=false") as wk:
        r = exec_(wk.conn, "insert into items(name) values ('again')")
        assert r["status"] == "DbError" and "unsafe use of virtual table" in r["error"], r
    assert file_query(dbfile, "select count(*) from items where name = 'again'") == [(0,)]


# ---- the time zone cache of Django's functions -----------------------------

def test_many_time_zones_do_not_lock_others_out(dbfile):
    """One client asking for more distinct zones than the worker caches
    (MW_TZ_CACHE_MAX, 128) does not make later new zones fail for everyone:
    the least recently used zone makes room."""
    zdir = "/usr/share/zoneinfo/America"
    if not os.path.isdir(zdir):
        pytest.skip("no system zoneinfo")
    zones = sorted(f"America/{f}" for f in os.listdir(zdir)
                   if os.path.isfile(os.path.join(zdir, f)))[:140]
    assert len(zones) > 128
    sql = "select django_datetime_cast_date('2020-01-01 12:00:00', $1, 'UTC')"
    with worker(dbfile, "--pool", "default:sqlite_django_functions=true") as w:
        c = w.conn
        for z in zones + ["Asia/Tokyo", zones[0]]:
            r = query(c, sql, [z])
            assert r["status"] == "Ok", (z, r)
        assert rows(query(c, sql, ["Asia/Tokyo"])) == [["2020-01-01"]]
