/*
 * molt_arrow_dump --dsn DSN --sql SQL [--batch-rows N] [--simple | --copy]
 *                 [--stats]
 *
 * Runs one query and writes its result to stdout as an Arrow IPC stream:
 * the schema, one record batch per batch_rows rows, the end-of-stream
 * marker. Batches are borrowed views serialized straight from the builder,
 * whose buffers are reused, so memory stays flat however many rows come.
 * --simple uses the simple protocol (every column text, so every column
 * Utf8). --copy runs the SELECT through COPY (FORMAT binary) instead
 * (molt_db_conn_copy_query), into the same builder. --stats prints "rows=N batches=N peak_rss_kib=N" to stderr at the
 * end (VmHWM of /proc/self/status: unlike ru_maxrss it does not inherit
 * the peak of the process that spawned us). Exit status 0 on success; 1 with a message on stderr otherwise
 * (the stream on stdout is then incomplete: no end-of-stream marker).
 */
#include "molt_db/arrow.h"
#include "molt_db/arrow_ipc.h"
#include "molt_db/conn.h"
#include "molt_db/copy_binary.h"
#include "molt_db/loop_driven.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dump {
    molt_db_arrow_ipc_writer *writer;
    molt_db_buf out;
    long long rows, batches;
    int done;
    int status;
    molt_db_error err;
} dump;

static int flush_out(dump *d)
{
    if (d->out.len && fwrite(d->out.data, 1, d->out.len, stdout) != d->out.len)
        return molt_db_error_set(&d->err, MOLT_DB_EIO, "writing stdout failed");
    molt_db_buf_reset(&d->out);
    return MOLT_DB_OK;
}

static int on_schema(void *ud, struct ArrowSchema *schema)
{
    dump *d = ud;
    if (d->writer != NULL) /* one stream has one schema */
        return molt_db_error_set(&d->err, MOLT_DB_EINVAL,
                                 "more than one result set (use one statement)");
    int rc = molt_db_arrow_ipc_writer_new(schema, &d->writer, &d->err);
    if (rc == MOLT_DB_OK)
        rc = molt_db_arrow_ipc_write_schema(d->writer, &d->out, &d->err);
    return rc == MOLT_DB_OK ? flush_out(d) : rc;
}

static int on_batch(void *ud, struct ArrowArray *batch)
{
    dump *d = ud;
    d->rows += batch->length;
    d->batches++;
    int rc = molt_db_arrow_ipc_write_batch(d->writer, batch, &d->out, &d->err);
    return rc == MOLT_DB_OK ? flush_out(d) : rc;
}

static void on_done(void *ud, int status, const molt_db_error *err)
{
    dump *d = ud;
    d->done = 1;
    d->status = status;
    if (status != MOLT_DB_OK) {
        /* our own error (a callback's) explains it best; else the query's */
        if (err != NULL && err != &d->err && d->err.code == MOLT_DB_OK)
            molt_db_error_copy(&d->err, err);
        return;
    }
    if (d->writer == NULL) {
        d->status = molt_db_error_set(&d->err, MOLT_DB_EINVAL,
                                      "the statement returned no rows");
        return;
    }
    if (molt_db_arrow_ipc_write_eos(&d->out) != MOLT_DB_OK)
        d->status = molt_db_error_set(&d->err, MOLT_DB_ENOMEM, "out of memory");
    else
        d->status = flush_out(d);
}

typedef struct connect_state {
    int done, status;
    molt_db_error err;
} connect_state;

static void on_connect(molt_db_conn *c, int status, const molt_db_error *err,
                       void *ud)
{
    connect_state *s = ud;
    (void)c;
    s->done = 1;
    s->status = status;
    if (status != MOLT_DB_OK && err != NULL)
        molt_db_error_copy(&s->err, err);
}

/* Peak resident set of this process image, in KiB, or -1. */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static int usage(void)
{
    fprintf(stderr, "usage: molt_arrow_dump --dsn DSN --sql SQL "
                    "[--batch-rows N] [--simple | --copy] [--stats]\n");
    return 2;
}

static void on_closed(molt_db_conn *c, void *ud)
{
    (void)c;
    *(int *)ud = 1;
}

int main(int argc, char **argv)
{
    const char *dsn = NULL, *sql = NULL;
    size_t batch_rows = 0;
    int simple = 0, stats = 0, copy = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dsn") == 0 && i + 1 < argc)
            dsn = argv[++i];
        else if (strcmp(argv[i], "--sql") == 0 && i + 1 < argc)
            sql = argv[++i];
        else if (strcmp(argv[i], "--batch-rows") == 0 && i + 1 < argc)
            batch_rows = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--simple") == 0)
            simple = 1;
        else if (strcmp(argv[i], "--copy") == 0)
            copy = 1;
        else if (strcmp(argv[i], "--stats") == 0)
            stats = 1;
        else
            return usage();
    }
    if (dsn == NULL || sql == NULL)
        return usage();

    static char iobuf[1 << 16];
    setvbuf(stdout, iobuf, _IOFBF, sizeof iobuf);

    molt_db_loop *loop = NULL;
    molt_db_conninfo *ci = NULL;
    molt_db_conn *conn = NULL;
    molt_db_arrow_reader *reader = NULL;
    connect_state cs;
    memset(&cs, 0, sizeof cs);
    dump d;
    memset(&d, 0, sizeof d);
    int rc = molt_db_loop_driven_new(&loop, &d.err);
    if (rc == MOLT_DB_OK)
        rc = molt_db_conninfo_parse(dsn, &ci, &d.err);
    if (rc == MOLT_DB_OK)
        rc = molt_db_conn_connect(loop, ci, NULL, on_connect, &cs, &conn, &d.err);
    molt_db_conninfo_free(ci);
    if (rc == MOLT_DB_OK) {
        while (!cs.done)
            molt_db_loop_driven_run(loop, -1);
        rc = cs.status;
        if (rc != MOLT_DB_OK) {
            molt_db_error_move(&d.err, &cs.err);
            conn = NULL; /* freed by the library after a failed connect */
        }
    }
    if (rc == MOLT_DB_OK) {
        molt_db_arrow_reader_options o;
        memset(&o, 0, sizeof o);
        o.batch_rows = batch_rows;
        o.borrow = 1;
        o.on_schema = on_schema;
        o.on_batch = on_batch;
        o.on_done = on_done;
        o.ud = &d;
        rc = molt_db_arrow_reader_new(&o, &reader, &d.err);
    }
    if (rc == MOLT_DB_OK) {
        molt_db_result_handler h = molt_db_arrow_reader_handler(reader);
        rc = simple ? molt_db_conn_simple_query(conn, sql, &h)
             : copy ? molt_db_conn_copy_query(conn, sql, &h)
                    : molt_db_conn_query(conn, sql, 0, NULL, &h);
        if (rc == MOLT_DB_OK) {
            while (!d.done)
                molt_db_loop_driven_run(loop, -1);
            rc = d.status;
        } else {
            molt_db_error_set(&d.err, rc, "could not start the query");
        }
    }
    if (rc != MOLT_DB_OK)
        fprintf(stderr, "molt_arrow_dump: %s: %s%s%s\n", molt_db_code_name(rc),
                d.err.message, d.err.sqlstate[0] ? " SQLSTATE " : "",
                d.err.sqlstate);
    if (conn != NULL) {
        int closed = 0;
        molt_db_conn_close(conn, on_closed, &closed);
        while (!closed)
            molt_db_loop_driven_run(loop, -1);
    }
    molt_db_loop_free(loop);
    molt_db_arrow_reader_free(reader);
    molt_db_arrow_ipc_writer_free(d.writer);
    molt_db_buf_free(&d.out);
    molt_db_error_clear(&d.err);
    molt_db_error_clear(&cs.err);
    if (fflush(stdout) != 0 && rc == MOLT_DB_OK)
        rc = MOLT_DB_EIO;
    if (stats)
        fprintf(stderr, "rows=%lld batches=%lld peak_rss_kib=%ld\n", d.rows,
                d.batches, peak_rss_kib());
    return rc == MOLT_DB_OK ? 0 : 1;
}
