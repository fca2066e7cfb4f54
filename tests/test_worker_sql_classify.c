/*
 * The worker's PostgreSQL statement classifier (worker/sql_classify.c):
 * what db_query lets through, what it refuses and why, what marks a
 * connection for closing, and that quoting and comments never split or
 * hide a statement. Also the --db password hiding (worker/dsn_hide.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn_hide.h"
#include "sql_classify.h"
#include "test.h"

static mw_sql_class classify(const char *sql)
{
    mw_sql_class c;
    mw_sql_classify(sql, strlen(sql), &c);
    return c;
}

/* One statement that db_query runs. */
static void reads(const char *sql)
{
    mw_sql_class c = classify(sql);
    if (c.verdict != MW_SQL_READ || c.nstatements != 1)
        FAIL_AT("expected one read statement: %s (verdict %d, %zu statements, %s)",
                sql, (int)c.verdict, c.nstatements, c.reason);
}

/* Refused in db_query, the reason naming needle. */
static void refused(const char *sql, const char *needle)
{
    mw_sql_class c = classify(sql);
    if (c.verdict != MW_SQL_OTHER)
        FAIL_AT("expected refused: %s (verdict %d)", sql, (int)c.verdict);
    if (!strstr(c.reason, needle))
        FAIL_AT("reason for %s: \"%s\" lacks \"%s\"", sql, c.reason, needle);
}

TEST(test_reads)
{
    reads("select 1");
    reads("SELECT 1");
    reads("  \n\tSeLeCt 1 ;");
    reads("-- a comment\nselect 1");
    reads("/* outer /* nested; */ still; */ select 1");
    reads("with x as (select 1) select * from x");
    reads("values (1), (2)");
    reads("table pg_class");
    reads("show search_path");
    reads("explain select 1");
    reads("(select 1) union (select 2)");
    reads("select 'a;b', \"c;d\", $$;$$, $t$ ; $$ ; $t$, E'\\';'");
    reads("select $1::int, :name");           /* placeholders are not quotes */
    reads("select 'insert', \"update\" from t"); /* quoted: not keywords */
    reads("select pg_advisory_xact_lock(1)");    /* ends with the transaction */
    reads("select a$b from t");                  /* $ inside an identifier */
    reads("select u&'\\0041' as x");
}

TEST(test_refuses_other_statements)
{
    const char *kw[] = {"prepare x as select 1", "deallocate all", "execute x",
                        "discard all", "listen c", "unlisten *", "notify c",
                        "set search_path = x", "reset all", "copy t to stdout",
                        "load 'x'", "checkpoint", "vacuum", "lock t", "do $$ begin end $$",
                        "call p()", "begin", "commit", "rollback", "savepoint s",
                        "insert into t values (1)", "delete from t", "create table t(a int)",
                        NULL};
    for (const char **k = kw; *k; k++)
        refused(*k, "is refused");
    refused("PREPARE x AS select 1", "PREPARE is refused");
    refused("/* c */ -- d\n  DeAlLoCaTe molt_x", "DEALLOCATE");
    refused("\"select\" 1", "does not start with a keyword");
    mw_sql_class c = classify("selec 1");
    ASSERT_EQ_STR(c.sqlstate, "42601");
    ASSERT_CONTAINS(c.reason, "SELEC starts no PostgreSQL statement");
    ASSERT_EQ_STR(classify("listen x").sqlstate, "25006");
}

TEST(test_refuses_writes_inside_reads)
{
    refused("with d as (delete from t returning *) select * from d", "DELETE");
    refused("WITH i AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT 1", "INSERT");
    refused("with u as (update t set a = 1 returning 1) select 1", "UPDATE");
    refused("with m as (merge into t using s on true when matched then delete) select 1",
            "MERGE");
    refused("select * into newtable from t", "INTO");
    refused("select * from t for update", "UPDATE");
    refused("select * from t for share", "FOR SHARE");
    refused("select * from t for no key update", "locks rows");
    refused("explain analyze delete from t", "ANALYZE");
    refused("explain (analyse) select 1", "ANALYZE");
    refused("select dblink_exec('dbname=x', 'delete from t')", "dblink");
    refused("select * from pg_prepared_statements", "pg_prepared_statements");
    refused("select * from \"pg_prepared_statements\"", "pg_prepared_statements");
    refused("select * from U&\"pg_prepared_statement\\0073\"", "U&");
    /* what they read is named in a string */
    refused("select table_to_xml('pg_prepared_statements', true, false, '')", "named in a");
    refused("select pg_catalog.schema_to_xml('pg_catalog', true, false, '')", "schema_to_xml");
    refused("select query_to_xml('select * from pg_prepared_' || 'statements', true, true, '')",
            "query_to_xml");
    refused("select database_to_xmlschema(true, false, '')", "database_to_xml");
    refused("select * from ts_stat('select to_tsvector(statement) from x')", "ts_stat");
    reads("select 'table_to_xml' as t");
    refused("select ts_rewrite('a'::tsquery, 'select ''a''::tsquery, ''b''::tsquery')", "ts_rewrite");
    /* the reason names the family, never the client's own (maybe cut) word */
    refused("select table_to_xml\xc3\xa9\xc3\xa9()", "table_to_xml is refused");
    refused("select pg_terminate_backend(1)", "pg_terminate_backend");
    refused("select pg_catalog.pg_cancel_backend(1)", "pg_cancel_backend");
    refused("explain (\"analyze\") select 1", "ANALYZE");
    refused("explain verbose execute molt_0123456789abcdef0123456789abcdef", "EXPLAIN EXECUTE");
    /* writes a read-only transaction lets through (or its ROLLBACK does not undo) */
    refused("select lo_from_bytea(0, 'x')", "lo_from_bytea is refused");
    refused("select pg_catalog.lo_put(1, 0, 'x')", "lo_put");
    refused("select lo_unlink(1)", "lo_unlink");
    refused("select \"pg_notify\"('c', 'p')", "pg_notify");
    refused("select pg_logical_emit_message(false, 'p', 'x')", "pg_logical_emit_message");
    refused("select lo_export(1, '/tmp/x')", "lo_export");
    reads("select lo_get(1)");
    reads("select 'pg_notify' as lo_put_count");
}

TEST(test_statement_count)
{
    static const struct { const char *sql; size_t n; } cases[] = {
        {"select 1; select 2", 2},
        {"select 1;;; ;", 1},
        {"select 1; -- two? no: a comment", 1},
        {"select 1; commit; delete from t", 3},
        /* a ; in a string, quoted identifier, comment or dollar quote */
        {"select ';', \";\", /* ; */ $a$;$a$ -- ;\n", 1},
        /* an unterminated quote swallows the rest */
        {"select 'a; delete from t", 1},
        {"select $x$ a; delete from t $y$", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mw_sql_class c = classify(cases[i].sql);
        if (c.nstatements != cases[i].n)
            FAIL_AT("%s: %zu statements, expected %zu", cases[i].sql, c.nstatements,
                    cases[i].n);
    }
    ASSERT_EQ_INT(classify("select 1; commit; delete from t").verdict, MW_SQL_OTHER);
}

TEST(test_empty)
{
    const char *e[] = {"", " ", ";", " ; ;", "-- only a comment", "/* c */",
                       "/* a /* b */ c */ ;", NULL};
    for (const char **s = e; *s; s++) {
        mw_sql_class c = classify(*s);
        if (c.verdict != MW_SQL_EMPTY || c.nstatements != 0)
            FAIL_AT("expected empty: \"%s\"", *s);
    }
    /* an unterminated nested comment is a comment to the end */
    ASSERT_EQ_INT(classify("/* /* */ select 1").verdict, MW_SQL_EMPTY);
}

TEST(test_backslash_readings)
{
    /* standard_conforming_strings on: 'a\' ends at the second quote; off:
     * \' is a quote. The two readings disagree on the statements. */
    refused("select 'a\\'; select 1 --'", "ambiguous");
    refused("select 'x\\''; delete from t; --'", "ambiguous");
    /* a backslash that does not move a boundary is fine */
    reads("select 'C:\\dir'");
    /* E'' is always an escape string: no ambiguity */
    reads("select E'it\\'s'");
}

TEST(test_session_state)
{
    const char *flagged[] = {
        "select pg_advisory_lock(1)", "select pg_try_advisory_lock_shared(1)",
        "select pg_catalog.pg_advisory_unlock_all()", "select \"pg_advisory_lock\"(1)",
        "select set_config('a.b', 'c', false)", "select query_to_xml('deallocate all', true, true, '')",
        "select * from ts_stat('select 1')", "select dblink_connect('c', 'dbname=x')",
        "set search_path = x", "SET ROLE x", "reset all", "prepare p as select 1",
        "listen c", "load 'plpgsql'", "declare c cursor with hold for select 1",
        "create temp table t(a int)", "create temporary table t(a int)",
        "discard all", "set", "do $$begin perform 1; end$$", "DO 'begin null; end'",
        "select setseed(0.25)", "select ts_rewrite('a'::tsquery, 'select 1')",
        "create table pg_temp.t as select 1", "create view \"pg_temp\".v as select 1",
        "alter table t set schema pg_temp_3", NULL};
    for (const char **s = flagged; *s; s++)
        if (!classify(*s).session_state)
            FAIL_AT("not marked session_state: %s", *s);
    const char *clean[] = {"select 1", "select pg_advisory_xact_lock(1)",
                           "set local search_path = x", "insert into t values (1)",
                           "select 'pg_advisory_lock(1)'", "notify c", NULL};
    for (const char **s = clean; *s; s++)
        if (classify(*s).session_state)
            FAIL_AT("marked session_state: %s", *s);
}

TEST(test_tx_control)
{
    const char *flagged[] = {
        "commit", "COMMIT AND CHAIN", "end", "abort", "rollback", "begin",
        "start transaction read write", "savepoint s", "release s", "rollback to s",
        "prepare transaction 'x'", "commit prepared 'x'", "/* c */ -- x\n CoMmIt",
        "insert into t values (1); commit", "(commit)", NULL};
    for (const char **s = flagged; *s; s++)
        if (!classify(*s).tx_control)
            FAIL_AT("not marked tx_control: %s", *s);
    const char *clean[] = {"select 1", "prepare p as select 1", "select 'commit'",
                           "select \"begin\" from t", "update t set commit = 1",
                           "set transaction isolation level serializable",
                           "insert into t values (1) -- commit", NULL};
    for (const char **s = clean; *s; s++)
        if (classify(*s).tx_control)
            FAIL_AT("marked tx_control: %s", *s);
}

TEST(test_nul_bytes_and_long_words)
{
    mw_sql_class c;
    mw_sql_classify("select 1\0; delete", 18, &c);
    ASSERT_EQ_UINT(c.nstatements, 2);
    char big[400];
    memset(big, 'a', sizeof big);
    memcpy(big, "select ", 7);
    big[sizeof big - 1] = 0;
    reads(big);
}

static char *hide(const char *dsn)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s", dsn);
    mw_dsn_hide_password(buf);
    return buf;
}

TEST(test_dsn_hide_password)
{
    ASSERT_EQ_STR(hide("postgresql://u:secret@h/d"), "postgresql://u:******@h/d");
    ASSERT_EQ_STR(hide("postgres://u:s@h:5432/d?password=x2&sslmode=require"),
                  "postgres://u:*@h:5432/d?password=**&sslmode=require");
    ASSERT_EQ_STR(hide("postgresql://u@h/d"), "postgresql://u@h/d");
    ASSERT_EQ_STR(hide("postgresql://h/d?sslmode=disable"), "postgresql://h/d?sslmode=disable");
    ASSERT_EQ_STR(hide("host=h password=pw user=u"), "host=h password=** user=u");
    ASSERT_EQ_STR(hide("host=h password = 'p w\\'x' user=u"),
                  "host=h password = '******' user=u");
    ASSERT_EQ_STR(hide("sqlite:///tmp/password=x.db"), "sqlite:///tmp/password=x.db");
    ASSERT_EQ_UINT(mw_dsn_hide_password(hide("host=h user=u")), 0);
}

TEST_MAIN(TEST_ENTRY(test_reads), TEST_ENTRY(test_refuses_other_statements),
          TEST_ENTRY(test_refuses_writes_inside_reads), TEST_ENTRY(test_statement_count),
          TEST_ENTRY(test_empty), TEST_ENTRY(test_backslash_readings),
          TEST_ENTRY(test_session_state), TEST_ENTRY(test_tx_control),
          TEST_ENTRY(test_nul_bytes_and_long_words),
          TEST_ENTRY(test_dsn_hide_password))
