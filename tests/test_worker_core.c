/*
 * The worker's core without a process (worker.h): a worker opened on a loop
 * of the test's own, serving a Unix socket that the test connects to, with
 * a real SQLite file behind it. Requests go through the session, the
 * request, the entries, the scheduler and the SQLite backend; the test
 * turns the loop between its reads and ends with the worker's shutdown.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <msgpack.h>
#include <sqlite3.h>

#include "config.h"
#include "sqlite_django.h"
#include "test.h"
#include "transport.h"
#include "worker.h"

typedef struct core {
    char dir[64];
    char db[128];
    char sock[96];
    mw_config cfg;
    uv_loop_t loop;
    mw_worker w;
    int fd;                  /* the test's client connection */
    molt_db_buf in;          /* bytes read from it */
    msgpack_unpacked resp;   /* the last response */
} core;

static void sql_file(const char *path, const char *sql)
{
    sqlite3 *db;
    char *msg = NULL;
    ASSERT_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        FAIL_AT("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* One integer the file holds now, read without the worker. */
static long long sql_file_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    ASSERT_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ASSERT_EQ_INT(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* pool: a per-alias setting for "default" ("NAME=VALUE"), or NULL */
static void parse_config(core *c, const char *dsn, const char *pool)
{
    char err[MW_ERR_SIZE];
    char db[256], setting[128];
    snprintf(db, sizeof db, "default=%s", dsn);
    snprintf(setting, sizeof setting, "default:%s", pool ? pool : "sqlite_conns=4");
    char *argv[] = {"--socket", c->sock, "--db", db, "--allow-write", "default",
                    "--pool", setting, NULL};
    mw_config_init(&c->cfg);
    if (mw_config_parse_args(&c->cfg, 8, argv, stdout, err) != 0 ||
        mw_config_validate(&c->cfg, err) < 0)
        FAIL_AT("config: %s", err);
}

/* Opens a worker on a fresh SQLite file; 0, or -1 with err when the worker
 * refused to open (it is then run to its end here). */
static int core_try_start(core *c, const char *pool, char err[MW_ERR_SIZE])
{
    memset(c, 0, sizeof *c);
    signal(SIGPIPE, SIG_IGN);
    snprintf(c->dir, sizeof c->dir, "/tmp/mw-core-XXXXXX");
    ASSERT(mkdtemp(c->dir) != NULL);
    snprintf(c->db, sizeof c->db, "%s/t.db", c->dir);
    snprintf(c->sock, sizeof c->sock, "%s/w.sock", c->dir);
    sql_file(c->db, "create table items(id integer primary key, name text, qty integer);"
                    "insert into items(name, qty) values ('apple', 3), ('pear', 0), ('fig', 7);");
    char dsn[160];
    snprintf(dsn, sizeof dsn, "sqlite://%s", c->db);
    parse_config(c, dsn, pool);
    ASSERT_EQ_INT(uv_loop_init(&c->loop), 0);
    if (mw_worker_open(&c->w, &c->loop, &c->cfg, err) < 0) {
        ASSERT_EQ_INT(mw_worker_run(&c->w), 1);
        mw_config_free(&c->cfg);
        unlink(c->db);
        rmdir(c->dir);
        return -1;
    }
    if (mw_transport_listen(&c->w, err) < 0)
        FAIL_AT("listen: %s", err);
    /* the listener's backlog takes the connection before the loop turns */
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT(c->fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", c->sock);
    ASSERT_EQ_INT(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    molt_db_buf_init(&c->in);
    msgpack_unpacked_init(&c->resp);
    return 0;
}

static void core_start(core *c)
{
    char err[MW_ERR_SIZE];
    if (core_try_start(c, NULL, err) < 0)
        FAIL_AT("open: %s", err);
}

/* Shuts the worker down the way SIGTERM does and runs it to its end. */
static void core_stop(core *c)
{
    if (c->fd >= 0)
        close(c->fd);
    mw_worker_shutdown(&c->w, 1);
    ASSERT_EQ_INT(mw_worker_run(&c->w), 0);
    ASSERT(access(c->sock, F_OK) < 0); /* the socket file is gone */
    mw_config_free(&c->cfg);
    molt_db_buf_free(&c->in);
    msgpack_unpacked_destroy(&c->resp);
    unlink(c->db);
    rmdir(c->dir);
}

static void send_raw(core *c, const void *body, size_t len)
{
    uint8_t head[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                       (uint8_t)(len >> 24)};
    ASSERT_EQ_INT(write(c->fd, head, 4), 4);
    ASSERT_EQ_INT(write(c->fd, body, len), (ssize_t)len);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* A request envelope; payload (a packed map) may be NULL. */
static void send_request(core *c, uint64_t id, const char *entry,
                         const msgpack_sbuffer *payload)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, payload ? 3 : 2);
    pack_str(&pk, "request_id");
    msgpack_pack_uint64(&pk, id);
    pack_str(&pk, "entry");
    pack_str(&pk, entry);
    if (payload) {
        pack_str(&pk, "payload");
        msgpack_pack_bin(&pk, payload->size);
        msgpack_pack_bin_body(&pk, payload->data, payload->size);
    }
    send_raw(c, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* db_query / db_exec (with allow_write) with sql and, when arg is not
 * NULL, one positional value, in transaction tx_id when not 0; rows come
 * back as msgpack. */
static void send_db_in(core *c, uint64_t id, const char *entry, const char *sql,
                       const char *arg, uint64_t tx_id)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int exec = strcmp(entry, "db_exec") == 0;
    msgpack_pack_map(&pk, 2 + (arg != NULL) + exec + (tx_id != 0));
    pack_str(&pk, "sql");
    pack_str(&pk, sql);
    if (tx_id) {
        pack_str(&pk, "tx_id");
        msgpack_pack_uint64(&pk, tx_id);
    }
    pack_str(&pk, "result_format");
    pack_str(&pk, "msgpack");
    if (exec) {
        pack_str(&pk, "allow_write");
        msgpack_pack_true(&pk);
    }
    if (arg) {
        pack_str(&pk, "params");
        msgpack_pack_map(&pk, 2);
        pack_str(&pk, "mode");
        pack_str(&pk, "positional");
        pack_str(&pk, "values");
        msgpack_pack_array(&pk, 1);
        pack_str(&pk, arg);
    }
    send_request(c, id, entry, &sb);
    msgpack_sbuffer_destroy(&sb);
}

static void send_db(core *c, uint64_t id, const char *entry, const char *sql,
                    const char *arg)
{
    send_db_in(c, id, entry, sql, arg, 0);
}

/* tx_begin (tx_id 0: a new transaction; else a savepoint in it), tx_commit
 * or tx_rollback. */
static void send_tx(core *c, uint64_t id, const char *entry, uint64_t tx_id)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, tx_id != 0);
    if (tx_id) {
        pack_str(&pk, "tx_id");
        msgpack_pack_uint64(&pk, tx_id);
    }
    send_request(c, id, entry, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* Turns the worker's loop until one whole response frame arrived; it is
 * left in c->resp (a map). */
static const msgpack_object *next_response(core *c)
{
    uint64_t deadline = uv_hrtime() + 10ull * 1000 * 1000 * 1000;
    for (;;) {
        if (c->in.len >= 4) {
            size_t n = (size_t)c->in.data[0] | (size_t)c->in.data[1] << 8 |
                       (size_t)c->in.data[2] << 16 | (size_t)c->in.data[3] << 24;
            if (c->in.len >= 4 + n) {
                size_t off = 0;
                ASSERT_EQ_INT(msgpack_unpack_next(&c->resp, (const char *)c->in.data + 4,
                                                  n, &off),
                              MSGPACK_UNPACK_SUCCESS);
                ASSERT_EQ_UINT(off, n);
                molt_db_buf_consume(&c->in, 4 + n);
                ASSERT_EQ_INT(c->resp.data.type, MSGPACK_OBJECT_MAP);
                return &c->resp.data;
            }
        }
        if (uv_hrtime() > deadline)
            FAIL_AT("no response within 10 s");
        uv_run(&c->loop, UV_RUN_NOWAIT);
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 5) == 1) {
            uint8_t buf[65536];
            ssize_t got = read(c->fd, buf, sizeof buf);
            if (got <= 0)
                FAIL_AT("the worker closed the connection");
            molt_db_buf_put(&c->in, buf, (size_t)got);
            ASSERT_OK(molt_db_buf_ok(&c->in), NULL);
        }
    }
}

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    ASSERT_EQ_INT(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static int str_is(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* Asserts the response answers id with status; returns it. */
static const msgpack_object *expect(core *c, uint64_t id, const char *status)
{
    const msgpack_object *r = next_response(c);
    const msgpack_object *rid = get(r, "request_id"), *st = get(r, "status");
    ASSERT(rid && rid->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    ASSERT_EQ_UINT(rid->via.u64, id);
    if (!str_is(st, status)) {
        const msgpack_object *e = get(r, "error");
        FAIL_AT("request %llu: want %s, got %.*s (%.*s)", (unsigned long long)id, status,
                st && st->type == MSGPACK_OBJECT_STR ? (int)st->via.str.size : 1,
                st && st->type == MSGPACK_OBJECT_STR ? st->via.str.ptr : "?",
                e ? (int)e->via.str.size : 0, e ? e->via.str.ptr : "");
    }
    return r;
}

static void expect_error(core *c, uint64_t id, const char *status, const char *text)
{
    const msgpack_object *e = get(expect(c, id, status), "error");
    ASSERT(e && e->type == MSGPACK_OBJECT_STR);
    char msg[512];
    snprintf(msg, sizeof msg, "%.*s", (int)e->via.str.size, e->via.str.ptr);
    ASSERT_CONTAINS(msg, text);
}

/* The payload of an Ok response, unpacked into out. */
static const msgpack_object *payload_of(const msgpack_object *r, msgpack_unpacked *out)
{
    const msgpack_object *p = get(r, "payload");
    ASSERT(p && p->type == MSGPACK_OBJECT_BIN);
    size_t off = 0;
    ASSERT_EQ_INT(msgpack_unpack_next(out, p->via.bin.ptr, p->via.bin.size, &off),
                  MSGPACK_UNPACK_SUCCESS);
    return &out->data;
}

/* A db_query's rows as text: "apple 3; fig 7". */
static void rows_text(const msgpack_object *r, char *out, size_t cap)
{
    msgpack_unpacked p;
    msgpack_unpacked_init(&p);
    const msgpack_object *rows = get(payload_of(r, &p), "rows");
    ASSERT(rows && rows->type == MSGPACK_OBJECT_ARRAY);
    size_t used = 0;
    out[0] = 0;
    for (uint32_t i = 0; i < rows->via.array.size; i++) {
        const msgpack_object *row = &rows->via.array.ptr[i];
        ASSERT_EQ_INT(row->type, MSGPACK_OBJECT_ARRAY);
        for (uint32_t j = 0; j < row->via.array.size; j++) {
            const msgpack_object *v = &row->via.array.ptr[j];
            const char *sep = j ? " " : i ? "; " : "";
            if (v->type == MSGPACK_OBJECT_STR)
                used += (size_t)snprintf(out + used, cap - used, "%s%.*s", sep,
                                         (int)v->via.str.size, v->via.str.ptr);
            else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                used += (size_t)snprintf(out + used, cap - used, "%s%llu", sep,
                                         (unsigned long long)v->via.u64);
            else
                used += (size_t)snprintf(out + used, cap - used, "%s?", sep);
            ASSERT(used < cap);
        }
    }
    msgpack_unpacked_destroy(&p);
}

TEST(sqlite_round_trip)
{
    core c;
    core_start(&c);
    send_db(&c, 1, "db_query", "select name, qty from items where qty > $1 order by name", "1");
    char rows[256];
    rows_text(expect(&c, 1, "Ok"), rows, sizeof rows);
    ASSERT_EQ_STR(rows, "apple 3; fig 7");

    send_db(&c, 2, "db_exec", "insert into items(name, qty) values ($1, 5)", "kiwi");
    msgpack_unpacked p;
    msgpack_unpacked_init(&p);
    const msgpack_object *affected = get(payload_of(expect(&c, 2, "Ok"), &p), "rows_affected");
    ASSERT(affected && affected->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    ASSERT_EQ_UINT(affected->via.u64, 1);
    msgpack_unpacked_destroy(&p);
    /* the file holds it, read by a connection of the test's own */
    ASSERT_EQ_INT(sql_file_int(c.db, "select qty from items where name = 'kiwi'"), 5);

    send_request(&c, 3, "ping", NULL);
    expect(&c, 3, "Ok");
    ASSERT_EQ_UINT(c.w.c.requests, 3);
    ASSERT_EQ_UINT(c.w.c.ok, 3);
    ASSERT_EQ_UINT(c.w.nsessions, 1);
    core_stop(&c);
}

/* Malformed frames are answered InvalidInput and the session goes on. */
TEST(malformed_requests)
{
    core c;
    core_start(&c);
    static const uint8_t array[] = {0x93, 1, 2, 3};
    send_raw(&c, array, sizeof array);
    expect_error(&c, 0, "InvalidInput", "not a MsgPack map");

    static const uint8_t truncated[] = {0x82, 0xaa, 'r', 'e', 'q'};
    send_raw(&c, truncated, sizeof truncated);
    expect_error(&c, 0, "InvalidInput", "truncated");

    /* an array that claims 4 billion elements, in an 8-byte body */
    static const uint8_t huge[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff};
    send_raw(&c, huge, sizeof huge);
    expect(&c, 0, "InvalidInput");

    /* a payload that is not a map, then an unknown entry */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    send_request(&c, 7, "db_query", &sb);
    expect(&c, 7, "InvalidInput");
    msgpack_sbuffer_destroy(&sb);
    send_request(&c, 8, "drop_everything", NULL);
    expect(&c, 8, "InvalidInput");

    send_request(&c, 9, "ping", NULL);
    expect(&c, 9, "Ok");
    ASSERT_EQ_UINT(c.w.c.invalid_input, 5);
    ASSERT_EQ_UINT(c.w.nsessions, 1);
    core_stop(&c);
}

/* db_query cannot write, whatever the statement: the file is unchanged. */
TEST(db_query_is_read_only)
{
    core c;
    core_start(&c);
    send_db(&c, 1, "db_query", "delete from items", NULL);
    expect(&c, 1, "DbError");
    send_db(&c, 2, "db_query", "update items set qty = 0 returning qty", NULL);
    expect(&c, 2, "DbError");
    send_db(&c, 3, "db_query", "select 1; delete from items", NULL);
    expect(&c, 3, "InvalidInput");
    ASSERT_EQ_INT(sql_file_int(c.db, "select count(*) from items"), 3);
    ASSERT_EQ_INT(sql_file_int(c.db, "select sum(qty) from items"), 10);
    core_stop(&c);
}

/* Shutdown without grace while a query runs: it is answered Busy and
 * interrupted in SQLite, the session closes, and the worker ends. */
TEST(shutdown_stops_a_running_query)
{
    core c;
    core_start(&c);
    send_db(&c, 1, "db_query", "with recursive r(i) as (select 1 union all select i + 1 "
                               "from r where i < 2000000000) select count(*) from r", NULL);
    uint64_t until = uv_hrtime() + 200ull * 1000 * 1000;
    while (uv_hrtime() < until)
        uv_run(&c.loop, UV_RUN_NOWAIT);
    ASSERT_EQ_UINT(c.w.inflight, 1);
    uint64_t t0 = uv_hrtime();
    mw_worker_shutdown(&c.w, 0);
    expect_error(&c, 1, "Busy", "shutting down");
    core_stop(&c);
    /* interrupted, not run to its end (that takes minutes) */
    ASSERT(uv_hrtime() - t0 < 5ull * 1000 * 1000 * 1000);
}

/* The tx_id of a tx_begin's answer. */
static uint64_t tx_id_of(const msgpack_object *r)
{
    msgpack_unpacked p;
    msgpack_unpacked_init(&p);
    const msgpack_object *id = get(payload_of(r, &p), "tx_id");
    ASSERT(id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    uint64_t v = id->via.u64;
    msgpack_unpacked_destroy(&p);
    return v;
}

/* A transaction through the core: its write is the file's only after
 * tx_commit, a rolled-back savepoint leaves nothing, and one still open
 * at shutdown is rolled back before the worker ends. */
TEST(transactions)
{
    core c;
    core_start(&c);
    send_tx(&c, 1, "tx_begin", 0);
    uint64_t t = tx_id_of(expect(&c, 1, "Ok"));
    send_db_in(&c, 2, "db_exec", "insert into items(name, qty) values ('tx', 1)", NULL, t);
    expect(&c, 2, "Ok");
    send_tx(&c, 3, "tx_begin", t);
    expect(&c, 3, "Ok");
    send_db_in(&c, 4, "db_exec", "insert into items(name, qty) values ('sp', 1)", NULL, t);
    expect(&c, 4, "Ok");
    send_tx(&c, 5, "tx_rollback", t); /* to the savepoint */
    expect(&c, 5, "Ok");
    ASSERT_EQ_INT(sql_file_int(c.db, "select count(*) from items where name = 'tx'"), 0);
    send_tx(&c, 6, "tx_commit", t);
    expect(&c, 6, "Ok");
    ASSERT_EQ_INT(sql_file_int(c.db, "select count(*) from items where name in ('tx', 'sp')"), 1);
    send_db_in(&c, 7, "db_query", "select 1", NULL, t);
    expect_error(&c, 7, "InvalidInput", "unknown tx_id");

    send_tx(&c, 8, "tx_begin", 0);
    t = tx_id_of(expect(&c, 8, "Ok"));
    send_db_in(&c, 9, "db_exec", "insert into items(name, qty) values ('left', 1)", NULL, t);
    expect(&c, 9, "Ok");
    ASSERT_EQ_UINT(c.w.live_txs, 1);
    mw_worker_shutdown(&c.w, 0);
    uint64_t until = uv_hrtime() + 5ull * 1000 * 1000 * 1000;
    while (c.w.live_txs > 0 && uv_hrtime() < until)
        uv_run(&c.loop, UV_RUN_NOWAIT);
    ASSERT_EQ_UINT(c.w.live_txs, 0);
    ASSERT_EQ_INT(sql_file_int(c.db, "select count(*) from items where name = 'left'"), 0);
    core_stop(&c);
}

/* Django's SQLite functions are there only on an alias that asks for them;
 * a worker built without them refuses such an alias at start. */
TEST(django_functions_opt_in)
{
    static const char *sql = "select django_date_extract('year', '2024-05-06')";
    core c;
    core_start(&c);
    send_db(&c, 1, "db_query", sql, NULL);
    expect_error(&c, 1, "DbError", "no such function");
    send_db(&c, 2, "db_query", "select 'abc' regexp 'b'", NULL);
    expect_error(&c, 2, "DbError", "no such function");
    core_stop(&c);

    char err[MW_ERR_SIZE];
    int rc = core_try_start(&c, "sqlite_django_functions=true", err);
    if (!mw_sqlite_django_built()) {
        ASSERT_EQ_INT(rc, -1);
        ASSERT_CONTAINS(err, "alias default: sqlite_django_functions is set, but this "
                             "molt_worker was built without");
        return;
    }
    ASSERT_EQ_INT(rc, 0);
    send_db(&c, 1, "db_query", sql, NULL);
    char rows[64];
    rows_text(expect(&c, 1, "Ok"), rows, sizeof rows);
    ASSERT_EQ_STR(rows, "2024");
    core_stop(&c);
}

TEST_MAIN(TEST_ENTRY(sqlite_round_trip), TEST_ENTRY(malformed_requests),
          TEST_ENTRY(db_query_is_read_only), TEST_ENTRY(shutdown_stops_a_running_query),
          TEST_ENTRY(django_functions_opt_in), TEST_ENTRY(transactions))
