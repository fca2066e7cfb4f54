/* Framed execution on a real server (molt_db_conn_execute_framed,
 * molt_db_conn_query_framed, molt_db_conn_query_text): the frame's
 * statements run around the statement under one Sync (one ReadyForQuery),
 * the handler sees only the statement, a failing `before` keeps the
 * statement from running, and after any error (the statement's, a cancel,
 * `after`'s own) `after` runs alone before anything else reaches the
 * connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_internal.h" /* readies: the ReadyForQuery messages read */
#include "molt_db/conn.h"
#include "pgtest.h"

static const molt_db_frame ro = {"BEGIN READ ONLY", "ROLLBACK"};

/* The result plus the command tags the handler saw. */
typedef struct prep {
    int done, status;
    molt_db_stmt *stmt;
} prep;

static void on_prepared(void *ud, int status, molt_db_stmt *stmt,
                        const molt_db_error *err)
{
    prep *p = ud;
    (void)err;
    p->status = status;
    p->stmt = stmt;
    p->done = 1;
}

/* The result plus the command tags the handler saw, and the ReadyForQuery
 * messages read while it ran. */
typedef struct run {
    pgt_result *r;
    int ntags;
    char tag[64];
    uint64_t readies_at_start;
    uint64_t readies;
    prep ps;
} run;

static int run_columns(void *ud, const molt_db_column *c, size_t n)
{
    return pgt_on_columns_(((run *)ud)->r, c, n);
}
static int run_row(void *ud, const molt_db_field *f, size_t n)
{
    return pgt_on_row_(((run *)ud)->r, f, n);
}
static void run_command(void *ud, const char *tag)
{
    run *x = ud;
    x->ntags++;
    snprintf(x->tag, sizeof x->tag, "%s", tag);
}
static void run_done(void *ud, int status, const molt_db_error *err)
{
    pgt_on_done_(((run *)ud)->r, status, err);
}

typedef enum { VIA_EXECUTE, VIA_QUERY, VIA_TEXT, VIA_COUNT } via;

/* Runs the loop until nothing is queued or in flight. */
static void settle(pgt_conn *p)
{
    while (molt_db_conn_pending(p->conn) > 0)
        uv_run(&p->loop, UV_RUN_ONCE);
}

/* Submits sql (no parameters) through `how` in frame f (NULL: none); the
 * prepared statement of VIA_EXECUTE is made first. */
static void framed_start(pgt_conn *p, via how, const char *sql,
                         const molt_db_frame *f, run *x)
{
    memset(x, 0, sizeof *x);
    x->r = calloc(1, sizeof *x->r);
    ASSERT(x->r != NULL);
    molt_db_result_handler h = {run_columns, run_row, run_command, run_done, x};
    int rc;
    if (how == VIA_EXECUTE) {
        ASSERT_OK(molt_db_conn_prepare(p->conn, "fr", sql, 0, NULL, on_prepared,
                                       &x->ps), NULL);
        while (!x->ps.done)
            uv_run(&p->loop, UV_RUN_ONCE);
        ASSERT_OK(x->ps.status, NULL);
    }
    x->readies_at_start = p->conn->readies;
    if (how == VIA_EXECUTE)
        rc = molt_db_conn_execute_framed(p->conn, x->ps.stmt, 0, NULL, f, &h);
    else if (how == VIA_QUERY)
        rc = molt_db_conn_query_framed(p->conn, sql, 0, NULL, f, &h);
    else
        rc = molt_db_conn_query_text(p->conn, sql, 0, NULL, f, &h);
    if (rc != MOLT_DB_OK) {
        x->r->status = rc;
        x->r->done = 1;
    }
}

/* Waits for the request framed_start submitted. */
static void framed_finish(pgt_conn *p, run *x)
{
    pgt_wait_(p, x->r);
    x->readies = p->conn->readies - x->readies_at_start;
    if (x->ps.stmt != NULL) {
        ASSERT_OK(molt_db_conn_close_stmt(p->conn, "fr", NULL), NULL);
        molt_db_stmt_free(x->ps.stmt);
        x->ps.stmt = NULL;
    }
    settle(p);
}

/* Runs sql (no parameters) through `how` in frame f, alone on the
 * connection. */
static void framed(pgt_conn *p, via how, const char *sql,
                   const molt_db_frame *f, run *x)
{
    settle(p);
    framed_start(p, how, sql, f, x);
    framed_finish(p, x);
}

static void done_run(run *x)
{
    pgt_result_free(x->r);
}

/* SHOW transaction_read_only on the connection, unframed. */
static void expect_read_only(pgt_conn *p, const char *want)
{
    pgt_result *r = pgt_simple(p, "SHOW transaction_read_only");
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_STR(pgt_text(r, 0, 0), want);
    pgt_result_free(r);
}

static long count_rows(pgt_conn *p)
{
    pgt_result *r = pgt_simple(p, "SELECT count(*) FROM fr_items");
    ASSERT_OK(r->status, &r->err);
    long n = atol(pgt_text(r, 0, 0));
    pgt_result_free(r);
    return n;
}

TEST(frame_runs_around_the_statement)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_exec_ok(p, "DROP TABLE IF EXISTS fr_items; CREATE TABLE fr_items(i int)");
    for (via how = VIA_EXECUTE; how < VIA_COUNT; how++) {
        run x;
        /* the rows and tag of the statement, none of BEGIN/ROLLBACK */
        framed(p, how, "SELECT g::int4 FROM generate_series(1, 3) g", &ro, &x);
        ASSERT_OK(x.r->status, &x.r->err);
        ASSERT_EQ_UINT(x.r->nrows, 3);
        ASSERT_EQ_INT(x.ntags, 1);
        ASSERT_EQ_STR(x.tag, "SELECT 3");
        ASSERT_EQ_STR(x.r->names[0], "g");
        ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'I');
        ASSERT_EQ_UINT(x.readies, 1); /* BEGIN, statement, ROLLBACK: one Sync */
        done_run(&x);
        /* inside the frame: a read-only transaction */
        framed(p, how, "SELECT current_setting('transaction_read_only')", &ro, &x);
        ASSERT_OK(x.r->status, &x.r->err);
        ASSERT_EQ_STR(pgt_text(x.r, 0, 0), "on");
        done_run(&x);
        /* the statement's error; ROLLBACK still ran: idle again */
        framed(p, how, "INSERT INTO fr_items VALUES (1)", &ro, &x);
        ASSERT_CODE(x.r->status, MOLT_DB_ESERVER);
        ASSERT_EQ_STR(x.r->err.sqlstate, "25006");
        ASSERT_EQ_INT(x.ntags, 0);
        ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'I');
        ASSERT_EQ_UINT(x.readies, 2); /* the server skipped ROLLBACK: alone */
        done_run(&x);
        expect_read_only(p, "off");
        /* a failing `before` keeps the statement from running at all (the
         * rows of `after` are not shown) */
        static const molt_db_frame bad = {"SELECT 1/0", "SELECT 1"};
        framed(p, how, "INSERT INTO fr_items VALUES (2)", &bad, &x);
        ASSERT_CODE(x.r->status, MOLT_DB_ESERVER);
        ASSERT_EQ_STR(x.r->err.sqlstate, "22012");
        ASSERT_EQ_UINT(x.r->nrows, 0);
        done_run(&x);
        ASSERT_EQ_INT(count_rows(p), 0);
        /* unframed, the same call writes */
        framed(p, how, "INSERT INTO fr_items VALUES (3)", NULL, &x);
        ASSERT_OK(x.r->status, &x.r->err);
        ASSERT_EQ_STR(x.tag, "INSERT 0 1");
        done_run(&x);
        ASSERT_EQ_INT(count_rows(p), 1);
        pgt_exec_ok(p, "DELETE FROM fr_items");
    }
    pgt_exec_ok(p, "DROP TABLE fr_items");
    pgt_close(p);
}

TEST(query_text_takes_one_statement_and_parameters)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    run x;
    framed(p, VIA_TEXT, "COMMIT; SELECT 1", &ro, &x);
    ASSERT_CODE(x.r->status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(x.r->err.sqlstate, "42601");
    ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'I');
    done_run(&x);
    pgt_result *r = calloc(1, sizeof *r);
    ASSERT(r != NULL);
    molt_db_result_handler h = pgt_handler_(r);
    molt_db_param prm = {0, MOLT_DB_FORMAT_TEXT, 2, (const uint8_t *)"41"};
    ASSERT_OK(molt_db_conn_query_text(p->conn, "SELECT $1::int4 + 1 AS n", 1, &prm,
                                      NULL, &h), NULL);
    pgt_wait_(p, r);
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_STR(pgt_text(r, 0, 0), "42");
    ASSERT_EQ_INT(r->formats[0], MOLT_DB_FORMAT_TEXT);
    pgt_result_free(r);
    /* a frame needs both halves */
    molt_db_frame half = {"BEGIN", NULL};
    molt_db_result_handler h2 = pgt_handler_(NULL);
    ASSERT_CODE(molt_db_conn_query_text(p->conn, "SELECT 1", 0, NULL, &half, &h2),
                MOLT_DB_EINVAL);
    pgt_close(p);
}

/* What the statement set, on success or before it failed, does not outlive
 * the frame: the ROLLBACK under the Sync, or the one sent alone after the
 * error, undoes it for the next request on the connection. */
TEST(settings_made_in_the_frame_are_rolled_back)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_result *r = pgt_simple(p, "SHOW search_path");
    ASSERT_OK(r->status, &r->err);
    char *path = strdup(pgt_text(r, 0, 0));
    pgt_result_free(r);
    static const char *const sets[] = {
        "SELECT set_config('search_path', 'pg_catalog', false)",
        /* (a volatile divisor: the error comes after set_config ran) */
        "SELECT set_config('search_path', 'pg_catalog', false), 1/(random() > 2)::int",
        "SELECT set_config('default_transaction_read_only', 'on', false), "
        "1/(random() > 2)::int",
    };
    for (via how = VIA_EXECUTE; how < VIA_COUNT; how++) {
        for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
            run x;
            framed(p, how, sets[i], &ro, &x);
            if (i == 0) {
                ASSERT_OK(x.r->status, &x.r->err);
                ASSERT_EQ_STR(pgt_text(x.r, 0, 0), "pg_catalog");
            } else {
                ASSERT_EQ_STR(x.r->err.sqlstate, "22012");
            }
            ASSERT_EQ_UINT(x.readies, i == 0 ? 1 : 2);
            done_run(&x);
            r = pgt_simple(p, "SHOW search_path");
            ASSERT_OK(r->status, &r->err);
            ASSERT_EQ_STR(pgt_text(r, 0, 0), path);
            pgt_result_free(r);
            expect_read_only(p, "off");
            framed(p, how, "SELECT current_setting('transaction_read_only')", &ro, &x);
            ASSERT_OK(x.r->status, &x.r->err);
            ASSERT_EQ_STR(pgt_text(x.r, 0, 0), "on");
            done_run(&x);
        }
    }
    free(path);
    pgt_close(p);
}

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

static void run_for(pgt_conn *p, double s)
{
    double until = now_s() + s;
    while (now_s() < until)
        uv_run(&p->loop, UV_RUN_NOWAIT);
}

typedef struct cancel_state {
    int done, status;
} cancel_state;

static void on_cancel(void *ud, int status, const molt_db_error *err)
{
    (void)err;
    cancel_state *s = ud;
    s->status = status;
    s->done = 1;
}

TEST(a_cancelled_statement_leaves_the_connection_idle)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    for (via how = VIA_EXECUTE; how < VIA_COUNT; how++) {
        run x;
        settle(p);
        framed_start(p, how, "SELECT pg_sleep(30)", &ro, &x);
        run_for(p, 0.3); /* the server sleeps inside the frame */
        ASSERT(!x.r->done);
        cancel_state cs = {0};
        double t0 = now_s();
        ASSERT_OK(molt_db_conn_cancel(p->conn, 2000, on_cancel, &cs), NULL);
        framed_finish(p, &x);
        ASSERT(now_s() - t0 < 5.0);
        ASSERT_CODE(x.r->status, MOLT_DB_ESERVER);
        ASSERT_EQ_STR(x.r->err.sqlstate, "57014");
        ASSERT_EQ_INT(x.ntags, 0);
        ASSERT_EQ_UINT(x.readies, 2); /* the aborted frame, then ROLLBACK */
        ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'I');
        done_run(&x);
        while (!cs.done)
            uv_run(&p->loop, UV_RUN_ONCE);
        ASSERT_OK(cs.status, NULL);
        /* the next request: outside any transaction, then framed again */
        expect_read_only(p, "off");
        framed(p, how, "SELECT current_setting('transaction_read_only')", &ro, &x);
        ASSERT_OK(x.r->status, &x.r->err);
        ASSERT_EQ_STR(pgt_text(x.r, 0, 0), "on");
        ASSERT_EQ_UINT(x.readies, 1);
        done_run(&x);
    }
    pgt_close(p);
}

TEST(a_failing_after_runs_again_alone)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    /* `after` fails under the Sync: the statement's result stands, on_done
     * gets after's error, after goes again as a Query (failing again in
     * the aborted transaction), and the transaction status tells the
     * caller that the frame did not end it */
    /* (longer than the request's inline copy of `after`) */
    static const molt_db_frame bad_after = {"BEGIN READ ONLY",
                                            "SELECT 1/0 AS the_end_of_the_frame"};
    for (via how = VIA_EXECUTE; how < VIA_COUNT; how++) {
        run x;
        framed(p, how, "SELECT 5::int4 AS n", &bad_after, &x);
        ASSERT_CODE(x.r->status, MOLT_DB_ESERVER);
        ASSERT_EQ_STR(x.r->err.sqlstate, "22012");
        ASSERT_EQ_UINT(x.r->nrows, 1);
        ASSERT_EQ_INT(x.ntags, 1);
        ASSERT_EQ_STR(x.tag, "SELECT 1");
        ASSERT_EQ_UINT(x.readies, 2);
        ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'E');
        done_run(&x);
        pgt_exec_ok(p, "ROLLBACK");
        ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'I');
        expect_read_only(p, "off");
    }
    pgt_close(p);
}

/* Submitted at once, behind a framed request that fails: they go out only
 * once its ROLLBACK ran, so none runs in its failed transaction. */
TEST(requests_behind_a_failing_frame_run_outside_it)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_exec_ok(p, "DROP TABLE IF EXISTS fr_items; CREATE TABLE fr_items(i int)");
    for (via how = VIA_EXECUTE; how < VIA_COUNT; how++) {
        run bad, ro_read, rw_read;
        settle(p);
        framed_start(p, how, "INSERT INTO fr_items VALUES (1)", &ro, &bad);
        pgt_result *show = calloc(1, sizeof *show);
        pgt_result *ins = calloc(1, sizeof *ins);
        ASSERT(show != NULL && ins != NULL);
        molt_db_result_handler hs = pgt_handler_(show), hi = pgt_handler_(ins);
        ASSERT_OK(molt_db_conn_simple_query(p->conn, "SHOW transaction_read_only", &hs),
                  NULL);
        framed_start(p, VIA_QUERY, "SELECT current_setting('transaction_read_only')",
                     &ro, &ro_read);
        ASSERT_OK(molt_db_conn_query(p->conn, "INSERT INTO fr_items VALUES (2)", 0,
                                     NULL, &hi), NULL);
        framed_start(p, VIA_TEXT, "SHOW transaction_read_only", NULL, &rw_read);
        framed_finish(p, &bad);
        ASSERT_CODE(bad.r->status, MOLT_DB_ESERVER);
        ASSERT_EQ_STR(bad.r->err.sqlstate, "25006");
        pgt_wait_(p, show);
        ASSERT_OK(show->status, &show->err);
        ASSERT_EQ_STR(pgt_text(show, 0, 0), "off");
        framed_finish(p, &ro_read);
        ASSERT_OK(ro_read.r->status, &ro_read.r->err);
        ASSERT_EQ_STR(pgt_text(ro_read.r, 0, 0), "on");
        pgt_wait_(p, ins);
        ASSERT_OK(ins->status, &ins->err);
        ASSERT_EQ_STR(ins->tag, "INSERT 0 1");
        framed_finish(p, &rw_read);
        ASSERT_OK(rw_read.r->status, &rw_read.r->err);
        ASSERT_EQ_STR(pgt_text(rw_read.r, 0, 0), "off");
        ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'I');
        done_run(&bad);
        done_run(&ro_read);
        done_run(&rw_read);
        pgt_result_free(show);
        pgt_result_free(ins);
        /* the unframed INSERT committed; the framed one did not */
        ASSERT_EQ_INT(count_rows(p), 1);
        pgt_result *r = pgt_simple(p, "SELECT min(i) FROM fr_items");
        ASSERT_OK(r->status, &r->err);
        ASSERT_EQ_STR(pgt_text(r, 0, 0), "2");
        pgt_result_free(r);
        pgt_exec_ok(p, "DELETE FROM fr_items");
    }
    pgt_exec_ok(p, "DROP TABLE fr_items");
    pgt_close(p);
}

/* The server ends the backend in the middle of a frame: the framed request
 * and the one held behind it complete (no hang), the connection is broken. */
TEST(the_backend_dying_mid_frame_fails_what_waits)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    pgt_conn *p = pgt_connect(dsn);
    pgt_conn *killer = pgt_connect(dsn);
    int32_t pid = 0, key = 0;
    molt_db_conn_backend_key(p->conn, &pid, &key);
    run x;
    framed_start(p, VIA_QUERY, "SELECT pg_sleep(30)", &ro, &x);
    pgt_result *behind = calloc(1, sizeof *behind);
    ASSERT(behind != NULL);
    molt_db_result_handler h = pgt_handler_(behind);
    ASSERT_OK(molt_db_conn_query(p->conn, "SELECT 1", 0, NULL, &h), NULL);
    run_for(p, 0.3);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", (int)pid);
    pgt_exec_ok(killer, sql);
    framed_finish(p, &x);
    ASSERT(x.r->status != MOLT_DB_OK);
    pgt_wait_(p, behind);
    ASSERT(behind->status == MOLT_DB_EIO || behind->status == MOLT_DB_ECLOSED);
    ASSERT(!molt_db_conn_is_ready(p->conn));
    done_run(&x);
    pgt_result_free(behind);
    pgt_close(killer);
    pgt_close(p);
}

TEST_MAIN(TEST_ENTRY(frame_runs_around_the_statement),
          TEST_ENTRY(query_text_takes_one_statement_and_parameters),
          TEST_ENTRY(settings_made_in_the_frame_are_rolled_back),
          TEST_ENTRY(a_cancelled_statement_leaves_the_connection_idle),
          TEST_ENTRY(a_failing_after_runs_again_alone),
          TEST_ENTRY(requests_behind_a_failing_frame_run_outside_it),
          TEST_ENTRY(the_backend_dying_mid_frame_fails_what_waits))
