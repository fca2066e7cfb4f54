/* Framed execution on a real server (molt_db_conn_execute_framed,
 * molt_db_conn_query_framed, molt_db_conn_query_text): the frame's
 * statements run around the statement in one round trip, the handler sees
 * only the statement, and a failing `before` keeps the statement from
 * running. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/conn.h"
#include "pgtest.h"

static const molt_db_frame ro = {"BEGIN READ ONLY", "ROLLBACK"};

/* The result plus the command tags the handler saw. */
typedef struct run {
    pgt_result *r;
    int ntags;
    char tag[64];
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

typedef enum { VIA_EXECUTE, VIA_QUERY, VIA_TEXT, VIA_COUNT } via;

/* Runs sql (no parameters) through `how` in frame f. */
static void framed(pgt_conn *p, via how, const char *sql,
                   const molt_db_frame *f, run *x)
{
    memset(x, 0, sizeof *x);
    x->r = calloc(1, sizeof *x->r);
    ASSERT(x->r != NULL);
    molt_db_result_handler h = {run_columns, run_row, run_command, run_done, x};
    prep ps = {0};
    int rc;
    if (how == VIA_EXECUTE) {
        ASSERT_OK(molt_db_conn_prepare(p->conn, "fr", sql, 0, NULL, on_prepared, &ps), NULL);
        while (!ps.done)
            uv_run(&p->loop, UV_RUN_ONCE);
        ASSERT_OK(ps.status, NULL);
        rc = molt_db_conn_execute_framed(p->conn, ps.stmt, 0, NULL, f, &h);
    } else if (how == VIA_QUERY) {
        rc = molt_db_conn_query_framed(p->conn, sql, 0, NULL, f, &h);
    } else {
        rc = molt_db_conn_query_text(p->conn, sql, 0, NULL, f, &h);
    }
    if (rc != MOLT_DB_OK)
        x->r->status = rc;
    else
        pgt_wait_(p, x->r);
    if (ps.stmt != NULL) {
        ASSERT_OK(molt_db_conn_close_stmt(p->conn, "fr", NULL), NULL);
        molt_db_stmt_free(ps.stmt);
    }
}

static void done_run(run *x)
{
    pgt_result_free(x->r);
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
        done_run(&x);
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

TEST_MAIN(TEST_ENTRY(frame_runs_around_the_statement),
          TEST_ENTRY(query_text_takes_one_statement_and_parameters))
