/* The connection against a real server: every auth method and sslmode, the
 * connect failures, queries, errors, pipelining and streaming. */
#include "pgtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char dsn_buf[4096];

/* A key=value DSN for user on 127.0.0.1 (or host) at the test port. */
static const char *kv_dsn(const char *host, const char *extra)
{
    const char *port = test_env_or_skip("MOLT_TEST_PGPORT");
    snprintf(dsn_buf, sizeof dsn_buf, "host=%s port=%s dbname=molt_test %s",
             host, port, extra);
    return dsn_buf;
}

/* The password embedded in a harness URI (postgresql://user:PW@...). */
static void uri_password(const char *uri, char *out, size_t n)
{
    const char *p = strstr(uri, "://");
    ASSERT(p != NULL);
    p = strchr(p + 3, ':');
    ASSERT(p != NULL);
    const char *at = strchr(p, '@');
    ASSERT(at != NULL && (size_t)(at - p - 1) < n);
    memcpy(out, p + 1, (size_t)(at - p - 1));
    out[at - p - 1] = '\0';
}

static void expect_connect_ok(const char *dsn, int want_tls)
{
    molt_db_error err;
    molt_db_error_init(&err);
    pgt_conn *p = NULL;
    int rc = pgt_try_connect(dsn, &p, &err);
    if (rc != MOLT_DB_OK)
        FAIL_AT("connect \"%s\" failed: %s: %s", dsn, molt_db_code_name(rc),
                err.message);
    if (want_tls >= 0)
        ASSERT_EQ_INT(molt_db_conn_uses_tls(p->conn), want_tls);
    pgt_result *r = pgt_simple(p, "SELECT 1");
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_STR(pgt_text(r, 0, 0), "1");
    pgt_result_free(r);
    pgt_close(p);
}

static void expect_connect_fail(const char *dsn, int code, const char *sqlstate,
                                const char *msg_part)
{
    molt_db_error err;
    molt_db_error_init(&err);
    pgt_conn *p = NULL;
    int rc = pgt_try_connect(dsn, &p, &err);
    if (rc == MOLT_DB_OK)
        FAIL_AT("connect \"%s\" succeeded; expected %s", dsn,
                molt_db_code_name(code));
    ASSERT(p == NULL);
    if (rc != code)
        FAIL_AT("connect \"%s\": got %s (%s), want %s", dsn,
                molt_db_code_name(rc), err.message, molt_db_code_name(code));
    if (sqlstate)
        ASSERT_EQ_STR(err.sqlstate, sqlstate);
    if (msg_part)
        ASSERT_CONTAINS(err.message, msg_part);
    molt_db_error_clear(&err);
}

TEST(connect_trust_tcp_and_socket)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    ASSERT(molt_db_conn_is_ready(p->conn));
    ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'I');
    ASSERT(molt_db_conn_parameter(p->conn, "server_version") != NULL);
    ASSERT_EQ_STR(molt_db_conn_parameter(p->conn, "client_encoding"), "UTF8");
    int32_t pid = 0, key = 0;
    ASSERT_OK(molt_db_conn_backend_key(p->conn, &pid, &key), NULL);
    ASSERT(pid > 0);
    char want[32];
    snprintf(want, sizeof want, "%d", (int)pid);
    pgt_result *r = pgt_simple(p, "SELECT pg_backend_pid()");
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_STR(pgt_text(r, 0, 0), want);
    pgt_result_free(r);
    pgt_close(p);
    expect_connect_ok(test_env_or_skip("MOLT_TEST_DSN_SOCKET"), 0);
}

TEST(auth_md5_and_scram)
{
    setenv("PGPASSFILE", "/nonexistent/pgpass", 1);
    const char *md5 = test_env_or_skip("MOLT_TEST_DSN_MD5");
    const char *scram = test_env_or_skip("MOLT_TEST_DSN_SCRAM");
    char dsn[1024];
    expect_connect_ok(md5, -1);
    expect_connect_ok(scram, -1);
    snprintf(dsn, sizeof dsn, "%s?sslmode=disable", md5);
    expect_connect_ok(dsn, 0);
    snprintf(dsn, sizeof dsn, "%s?sslmode=disable", scram);
    expect_connect_ok(dsn, 0);
    /* SCRAM-SHA-256-PLUS with tls-server-end-point channel binding */
    snprintf(dsn, sizeof dsn, "%s?sslmode=require&channel_binding=require", scram);
    expect_connect_ok(dsn, 1);
    snprintf(dsn, sizeof dsn, "%s?sslmode=disable&channel_binding=require", scram);
    expect_connect_fail(dsn, MOLT_DB_EAUTH, NULL, "channel binding");
    snprintf(dsn, sizeof dsn, "%s?channel_binding=require", md5);
    expect_connect_fail(dsn, MOLT_DB_EAUTH, NULL, "channel binding");
}

TEST(auth_wrong_or_missing_password)
{
    setenv("PGPASSFILE", "/nonexistent/pgpass", 1);
    expect_connect_fail(kv_dsn("127.0.0.1", "user=molt_md5 password=wrong-pw"),
                        MOLT_DB_ESERVER, "28P01", "password authentication failed");
    expect_connect_fail(kv_dsn("127.0.0.1", "user=molt_scram password=wrong-pw"),
                        MOLT_DB_ESERVER, "28P01", "password authentication failed");
    expect_connect_fail(kv_dsn("127.0.0.1", "user=molt_scram sslmode=disable"),
                        MOLT_DB_EAUTH, NULL, "no password");
    /* the error never carries the password */
    molt_db_error err;
    molt_db_error_init(&err);
    pgt_conn *p = NULL;
    ASSERT(pgt_try_connect(kv_dsn("127.0.0.1", "user=molt_md5 password=S3cr3t-Xy"),
                           &p, &err) != MOLT_DB_OK);
    ASSERT(strstr(err.message, "S3cr3t-Xy") == NULL);
    molt_db_error_clear(&err);
}

TEST(auth_password_from_passfile)
{
    const char *md5 = test_env_or_skip("MOLT_TEST_DSN_MD5");
    char pw[256];
    uri_password(md5, pw, sizeof pw);
    char path[] = "/tmp/molt_pgpass_XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    char line[512];
    int n = snprintf(line, sizeof line, "127.0.0.1:*:molt_test:molt_md5:%s\n", pw);
    ASSERT_EQ_INT(write(fd, line, (size_t)n), n);
    close(fd);
    setenv("PGPASSFILE", path, 1);
    expect_connect_ok(kv_dsn("127.0.0.1", "user=molt_md5"), -1);
    unlink(path);
    setenv("PGPASSFILE", "/nonexistent/pgpass", 1);
}

TEST(sslmodes)
{
    const char *root = test_env_or_skip("MOLT_TEST_SSLROOTCERT");
    const char *client_cert = test_env_or_skip("MOLT_TEST_SSLCERT");
    char extra[1024];
    expect_connect_ok(kv_dsn("127.0.0.1", "user=molt sslmode=disable"), 0);
    expect_connect_ok(kv_dsn("127.0.0.1", "user=molt sslmode=allow"), 0);
    expect_connect_ok(kv_dsn("127.0.0.1", "user=molt sslmode=prefer"), 1);
    expect_connect_ok(kv_dsn("127.0.0.1", "user=molt sslmode=require"), 1);
    snprintf(extra, sizeof extra, "user=molt sslmode=verify-ca sslrootcert=%s", root);
    expect_connect_ok(kv_dsn("127.0.0.1", extra), 1);
    snprintf(extra, sizeof extra, "user=molt sslmode=verify-full sslrootcert=%s", root);
    expect_connect_ok(kv_dsn("localhost", extra), 1);
    /* the server certificate names localhost only */
    expect_connect_fail(kv_dsn("127.0.0.1", extra), MOLT_DB_ETLS, NULL,
                        "verification failed");
    expect_connect_fail(kv_dsn("127.0.0.1",
                               "user=molt sslmode=verify-ca sslrootcert=/nonexistent/root.crt"),
                        MOLT_DB_ETLS, NULL, "does not exist");
    /* a root that did not sign the server's certificate */
    snprintf(extra, sizeof extra, "user=molt sslmode=verify-ca sslrootcert=%s",
             client_cert);
    expect_connect_fail(kv_dsn("127.0.0.1", extra), MOLT_DB_ETLS, NULL, NULL);
}

TEST(client_certificate)
{
    expect_connect_ok(test_env_or_skip("MOLT_TEST_CERT_DSN"), 1);
    const char *root = test_env_or_skip("MOLT_TEST_SSLROOTCERT");
    char extra[1024];
    snprintf(extra, sizeof extra,
             "user=molt_cert sslmode=verify-full sslrootcert=%s sslcertmode=disable",
             root);
    expect_connect_fail(kv_dsn("localhost", extra), MOLT_DB_ESERVER, NULL, NULL);
}

/* A loopback port with nothing listening. */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ_INT(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

TEST(connect_failures)
{
    test_env_or_skip("MOLT_TEST_DSN");
    char dsn[512];
    int port = closed_port();
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d user=molt dbname=x", port);
    expect_connect_fail(dsn, MOLT_DB_ECONNECT, NULL, "Connection refused");
    expect_connect_fail("host=/nonexistent/socketdir port=5432 user=molt",
                        MOLT_DB_ECONNECT, NULL, "/nonexistent/socketdir/.s.PGSQL.5432");
    /* a database that does not exist is the server's error */
    expect_connect_fail(kv_dsn("127.0.0.1", "user=molt dbname=no_such_db"),
                        MOLT_DB_ESERVER, "3D000", "no_such_db");
}

TEST(multi_host_fallback)
{
    const char *port = test_env_or_skip("MOLT_TEST_PGPORT");
    char dsn[512];
    snprintf(dsn, sizeof dsn,
             "host=127.0.0.1,/nonexistent/dir,127.0.0.1 port=%d,%s,%s user=molt "
             "dbname=molt_test",
             closed_port(), port, port);
    expect_connect_ok(dsn, -1);
    snprintf(dsn, sizeof dsn, "postgresql://molt@127.0.0.1:%d,127.0.0.1:%s/molt_test",
             closed_port(), port);
    expect_connect_ok(dsn, -1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST(connect_timeout)
{
    test_env_or_skip("MOLT_TEST_DSN");
    /* A listener that never accepts nor answers: TCP connects, startup hangs. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ_INT(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ_INT(listen(s, 8), 0);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    char dsn[256];
    snprintf(dsn, sizeof dsn,
             "host=127.0.0.1 port=%d user=molt connect_timeout=2 sslmode=disable",
             ntohs(a.sin_port));
    double t0 = now_s();
    expect_connect_fail(dsn, MOLT_DB_ETIMEDOUT, NULL, "timeout expired");
    double dt = now_s() - t0;
    ASSERT(dt >= 1.9 && dt < 4.0);
    close(s);
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

TEST(query_binary_and_text_results)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    molt_db_param prm = {0, MOLT_DB_FORMAT_TEXT, 2, (const uint8_t *)"41"};
    pgt_result *r = pgt_query(p, "SELECT $1::int8 + 1 AS n, 'x'::text AS t, "
                                 "'(1,2)'::point AS pt", 1, &prm);
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_UINT(r->ncols, 3);
    ASSERT_EQ_UINT(r->nrows, 1);
    ASSERT_EQ_STR(r->names[0], "n");
    ASSERT_EQ_UINT(r->oids[0], 20);
    ASSERT_EQ_INT(r->formats[0], MOLT_DB_FORMAT_BINARY);
    ASSERT_EQ_INT(r->lens[0], 8);
    ASSERT_EQ_UINT(be64(r->data[0]), 42);
    ASSERT_EQ_STR((const char *)r->data[1], "x");
    /* point has no binary codec here: it comes as text */
    ASSERT_EQ_INT(r->formats[2], MOLT_DB_FORMAT_TEXT);
    ASSERT_EQ_STR((const char *)r->data[2], "(1,2)");
    ASSERT_EQ_STR(r->tag, "SELECT 1");
    pgt_result_free(r);
    /* NULL parameter and NULL result */
    molt_db_param nul = {0, MOLT_DB_FORMAT_TEXT, -1, NULL};
    r = pgt_query(p, "SELECT $1::int4", 1, &nul);
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_INT(r->lens[0], -1);
    pgt_result_free(r);
    /* no rows, and a statement with no result columns */
    r = pgt_query(p, "SELECT 1 WHERE false", 0, NULL);
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_UINT(r->nrows, 0);
    ASSERT_EQ_STR(r->tag, "SELECT 0");
    pgt_result_free(r);
    r = pgt_query(p, "SET application_name = 'molt_test_app'", 0, NULL);
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_STR(r->tag, "SET");
    pgt_result_free(r);
    ASSERT_EQ_STR(molt_db_conn_parameter(p->conn, "application_name"), "molt_test_app");
    pgt_close(p);
}

/* molt_db_conn_submit refuses a descriptor whose fields do not fit its
 * mode, without sending anything: the connection still answers the next
 * request, and the refused SQL never ran. */
TEST(submit_checks_the_descriptor)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_exec_ok(p, "CREATE TEMP TABLE submit_t(x int)");
    const char *ins = "INSERT INTO submit_t VALUES (1)";
    molt_db_frame frame = {"BEGIN", "ROLLBACK"};
    molt_db_param prm = {0, MOLT_DB_FORMAT_TEXT, 1, (const uint8_t *)"1"};
    pgt_result dummy = {0};
    molt_db_result_handler h = pgt_handler_(&dummy);
    const molt_db_request bad[] = {
        {0, ins, NULL, 0, NULL, NULL},                        /* no mode */
        {(molt_db_run_mode)99, ins, NULL, 0, NULL, NULL},     /* unknown mode */
        {MOLT_DB_RUN_SIMPLE, ins, NULL, 0, NULL, &frame},     /* SIMPLE: no frame */
        {MOLT_DB_RUN_SIMPLE, ins, NULL, 1, &prm, NULL},       /* ... nor params */
        {MOLT_DB_RUN_SIMPLE, NULL, NULL, 0, NULL, NULL},      /* no SQL */
        {MOLT_DB_RUN_UNNAMED, NULL, NULL, 0, NULL, NULL},
        {MOLT_DB_RUN_UNNAMED, ins, NULL, 1, NULL, NULL},      /* params NULL */
        {MOLT_DB_RUN_PREPARED, ins, NULL, 0, NULL, NULL},     /* no statement */
        {MOLT_DB_RUN_PREPARED_BATCHED, ins, NULL, 0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_CODE(molt_db_conn_submit(p->conn, &bad[i], &h), MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_conn_submit(p->conn, NULL, &h), MOLT_DB_EINVAL);
    molt_db_request ok = {MOLT_DB_RUN_SIMPLE, ins, NULL, 0, NULL, NULL};
    ASSERT_CODE(molt_db_conn_submit(p->conn, &ok, NULL), MOLT_DB_EINVAL);
    /* the same descriptor in each mode that takes SQL runs it */
    static const molt_db_run_mode modes[] = {MOLT_DB_RUN_SIMPLE, MOLT_DB_RUN_UNNAMED,
                                             MOLT_DB_RUN_UNNAMED_TEXT};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        pgt_result *r = calloc(1, sizeof *r);
        ASSERT(r != NULL);
        molt_db_result_handler rh = pgt_handler_(r);
        ok.mode = modes[i];
        ASSERT_OK(molt_db_conn_submit(p->conn, &ok, &rh), NULL);
        r = pgt_wait_(p, r);
        ASSERT_OK(r->status, &r->err);
        ASSERT_EQ_STR(r->tag, "INSERT 0 1");
        pgt_result_free(r);
    }
    pgt_result *r = pgt_query(p, "SELECT count(*)::text FROM submit_t", 0, NULL);
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_STR((const char *)r->data[0], "3");
    pgt_result_free(r);
    pgt_close(p);
}

TEST(server_errors_keep_fields)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_result *r = pgt_query(p, "SELECT 1/0", 0, NULL);
    ASSERT_CODE(r->status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(r->err.sqlstate, "22012");
    ASSERT_EQ_STR(r->err.message, "division by zero");
    ASSERT_EQ_STR(r->err.severity, "ERROR");
    pgt_result_free(r);
    r = pgt_query(p, "SELECT no_such_column FROM pg_class", 0, NULL);
    ASSERT_CODE(r->status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(r->err.sqlstate, "42703");
    ASSERT_EQ_INT(r->err.position, 8);
    pgt_result_free(r);
    pgt_exec_ok(p, "CREATE TEMP TABLE uniq (id int CONSTRAINT uniq_pk PRIMARY KEY)");
    pgt_exec_ok(p, "INSERT INTO uniq VALUES (1)");
    r = pgt_query(p, "INSERT INTO uniq VALUES (1)", 0, NULL);
    ASSERT_CODE(r->status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(r->err.sqlstate, "23505");
    ASSERT_EQ_STR(r->err.constraint, "uniq_pk");
    ASSERT_EQ_STR(r->err.table, "uniq");
    ASSERT(r->err.schema != NULL);
    ASSERT_CONTAINS(r->err.detail, "Key (id)=(1) already exists");
    pgt_result_free(r);
    r = pgt_query(p, "SELEC 1", 0, NULL);
    ASSERT_EQ_STR(r->err.sqlstate, "42601");
    pgt_result_free(r);
    /* the connection is fine afterwards */
    r = pgt_query(p, "SELECT 'still here'::text", 0, NULL);
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_STR((const char *)r->data[0], "still here");
    pgt_result_free(r);
    /* an error inside a transaction block leaves it failed ('E') */
    pgt_exec_ok(p, "BEGIN");
    r = pgt_query(p, "SELECT 1/0", 0, NULL);
    ASSERT_CODE(r->status, MOLT_DB_ESERVER);
    pgt_result_free(r);
    ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'E');
    r = pgt_query(p, "SELECT 1", 0, NULL);
    ASSERT_EQ_STR(r->err.sqlstate, "25P02");
    pgt_result_free(r);
    pgt_exec_ok(p, "ROLLBACK");
    ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'I');
    pgt_close(p);
}

TEST(simple_protocol_multi_statement)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_result *r = pgt_simple(p, "CREATE TEMP TABLE ms (a int); "
                                  "INSERT INTO ms VALUES (1), (2); "
                                  "SELECT a FROM ms ORDER BY a");
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_UINT(r->nrows, 2);
    ASSERT_EQ_STR(pgt_text(r, 1, 0), "2");
    ASSERT_EQ_STR(r->tag, "SELECT 2");
    pgt_result_free(r);
    r = pgt_simple(p, "SELECT 1; SELECT 1/0; SELECT 3");
    ASSERT_CODE(r->status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(r->err.sqlstate, "22012");
    pgt_result_free(r);
    r = pgt_simple(p, "");
    ASSERT_OK(r->status, &r->err);
    pgt_result_free(r);
    /* COPY is refused cleanly and the connection stays usable */
    r = pgt_simple(p, "COPY ms FROM STDIN");
    ASSERT(r->status != MOLT_DB_OK);
    pgt_result_free(r);
    r = pgt_simple(p, "SELECT count(*) FROM ms");
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_STR(pgt_text(r, 0, 0), "2");
    pgt_result_free(r);
    pgt_close(p);
}

typedef struct pipe_state {
    int done;
    int order_ok;
    int expect_next;
    int failures;
} pipe_state;

typedef struct pipe_req {
    pipe_state *st;
    int index;
    int64_t value;
    int status;
    char sqlstate[6];
} pipe_req;

static int pipe_row(void *ud, const molt_db_field *f, size_t n)
{
    pipe_req *q = ud;
    ASSERT_EQ_UINT(n, 1);
    ASSERT_EQ_INT(f[0].len, 4);
    q->value = (int32_t)(((uint32_t)f[0].data[0] << 24) | ((uint32_t)f[0].data[1] << 16) |
                         ((uint32_t)f[0].data[2] << 8) | f[0].data[3]);
    return MOLT_DB_OK;
}

static void pipe_done(void *ud, int status, const molt_db_error *err)
{
    pipe_req *q = ud;
    q->status = status;
    if (err)
        memcpy(q->sqlstate, err->sqlstate, 6);
    q->st->done++;
}

TEST(pipelined_requests_fail_independently)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    enum { N = 200 };
    static pipe_req reqs[N];
    pipe_state st = {0};
    char text[N][16];
    for (int i = 0; i < N; i++) {
        reqs[i] = (pipe_req){&st, i, -1, 99, ""};
        int len = snprintf(text[i], sizeof text[i], "%d", i);
        molt_db_param prm = {0, MOLT_DB_FORMAT_TEXT, len, (const uint8_t *)text[i]};
        molt_db_result_handler h = {NULL, pipe_row, NULL, pipe_done, &reqs[i]};
        const char *sql = i == 57 ? "SELECT 1/($1::int4 - 57)" : "SELECT $1::int4";
        ASSERT_OK(molt_db_conn_query(p->conn, sql, 1, &prm, &h), NULL);
    }
    ASSERT_EQ_UINT(molt_db_conn_pending(p->conn), N);
    while (st.done < N)
        uv_run(&p->loop, UV_RUN_ONCE);
    for (int i = 0; i < N; i++) {
        if (i == 57) {
            ASSERT_CODE(reqs[i].status, MOLT_DB_ESERVER);
            ASSERT_EQ_STR(reqs[i].sqlstate, "22012");
        } else {
            ASSERT_OK(reqs[i].status, NULL);
            ASSERT_EQ_INT(reqs[i].value, i);
        }
    }
    ASSERT_EQ_UINT(molt_db_conn_pending(p->conn), 0);
    /* the per-query statements were all closed on the server */
    pgt_result *r = pgt_simple(p, "SELECT count(*) FROM pg_prepared_statements");
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_STR(pgt_text(r, 0, 0), "0");
    pgt_result_free(r);
    pgt_close(p);
}

typedef struct prep_state {
    molt_db_stmt *stmt;
    int status;
    int done;
} prep_state;

static void on_prepared(void *ud, int status, molt_db_stmt *stmt,
                        const molt_db_error *err)
{
    prep_state *s = ud;
    (void)err;
    s->status = status;
    s->stmt = stmt;
    s->done = 1;
}

TEST(prepare_execute_close)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    prep_state ps = {0};
    ASSERT_OK(molt_db_conn_prepare(p->conn, "s_echo", "SELECT $1::int8 AS v, $2 AS t",
                                   0, NULL, on_prepared, &ps), NULL);
    while (!ps.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(ps.status, NULL);
    ASSERT_EQ_STR(ps.stmt->name, "s_echo");
    ASSERT_EQ_UINT(ps.stmt->nparams, 2);
    ASSERT_EQ_UINT(ps.stmt->param_oids[0], 20);
    ASSERT_EQ_UINT(ps.stmt->param_oids[1], 25); /* inferred as text */
    ASSERT_EQ_UINT(ps.stmt->ncols, 2);
    ASSERT_EQ_STR(ps.stmt->cols[1].name, "t");
    for (int i = 0; i < 500; i++) {
        uint8_t v[8];
        for (int k = 0; k < 8; k++)
            v[k] = (uint8_t)((uint64_t)(i * 1000003LL) >> (56 - 8 * k));
        molt_db_param prm[2] = {{20, MOLT_DB_FORMAT_BINARY, 8, v},
                                {0, MOLT_DB_FORMAT_TEXT, 3, (const uint8_t *)"abc"}};
        pgt_result *r = calloc(1, sizeof *r);
        molt_db_result_handler h = pgt_handler_(r);
        ASSERT_OK(molt_db_conn_execute(p->conn, ps.stmt, 2, prm, &h), NULL);
        pgt_wait_(p, r);
        ASSERT_OK(r->status, &r->err);
        ASSERT_EQ_UINT(be64(r->data[0]), (uint64_t)(i * 1000003LL));
        ASSERT_EQ_STR((const char *)r->data[1], "abc");
        pgt_result_free(r);
    }
    /* wrong parameter count is the caller's error, caught before sending */
    ASSERT_CODE(molt_db_conn_execute(p->conn, ps.stmt, 0, NULL,
                                     &(molt_db_result_handler){0}),
                MOLT_DB_EINVAL);
    pgt_result *r = calloc(1, sizeof *r);
    molt_db_result_handler h = pgt_handler_(r);
    ASSERT_OK(molt_db_conn_close_stmt(p->conn, "s_echo", &h), NULL);
    pgt_wait_(p, r);
    ASSERT_OK(r->status, &r->err);
    pgt_result_free(r);
    r = pgt_simple(p, "SELECT count(*) FROM pg_prepared_statements");
    ASSERT_EQ_STR(pgt_text(r, 0, 0), "0");
    pgt_result_free(r);
    molt_db_stmt_free(ps.stmt);
    /* a statement that does not parse */
    ps = (prep_state){0};
    ASSERT_OK(molt_db_conn_prepare(p->conn, "bad", "SELEC", 0, NULL, on_prepared, &ps),
              NULL);
    while (!ps.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_CODE(ps.status, MOLT_DB_ESERVER);
    ASSERT(ps.stmt == NULL);
    pgt_close(p);
}

typedef struct count_state {
    uint64_t rows;
    uint64_t sum;
    int done;
    int status;
} count_state;

static int count_row(void *ud, const molt_db_field *f, size_t n)
{
    count_state *s = ud;
    (void)n;
    s->rows++;
    s->sum += be64(f[0].data);
    return MOLT_DB_OK;
}

static void count_done(void *ud, int status, const molt_db_error *err)
{
    count_state *s = ud;
    (void)err;
    s->status = status;
    s->done = 1;
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

TEST(large_results_stream)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    long before = max_rss_kib();
    count_state s = {0};
    molt_db_result_handler h = {NULL, count_row, NULL, count_done, &s};
    const uint64_t n = 3000000;
    ASSERT_OK(molt_db_conn_query(p->conn,
                                 "SELECT g::int8, repeat('x', 20) FROM "
                                 "generate_series(1, 3000000) g",
                                 0, NULL, &h), NULL);
    while (!s.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(s.status, NULL);
    ASSERT_EQ_UINT(s.rows, n);
    ASSERT_EQ_UINT(s.sum, n * (n + 1) / 2);
    long grew = max_rss_kib() - before;
    /* ~100 MB went by; holding it would show. */
    if (grew > 16 * 1024)
        FAIL_AT("peak RSS grew by %ld KiB while streaming", grew);
    pgt_close(p);
}

static int notices;
static char notice_text[MOLT_DB_ERROR_MESSAGE_SIZE + 64];

static void on_notice(molt_db_conn *c, const molt_db_error *n, void *ud)
{
    (void)c;
    (void)ud;
    notices++;
    snprintf(notice_text, sizeof notice_text, "%s|%s|%s", n->severity,
             n->sqlstate, n->message);
}

static void notice_connect_cb(molt_db_conn *c, int status,
                              const molt_db_error *err, void *ud)
{
    pgt_connect_cb_(c, status, err, ud);
}

TEST(notices_reach_the_callback)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    molt_db_conninfo *ci = NULL;
    ASSERT_OK(molt_db_conninfo_parse(dsn, &ci, NULL), NULL);
    pgt_conn *p = calloc(1, sizeof *p);
    uv_loop_init(&p->loop);
    ASSERT_OK(molt_db_loop_libuv_new(&p->loop, &p->ml, NULL), NULL);
    molt_db_conn_options o = {on_notice, NULL, NULL, NULL, NULL, NULL};
    ASSERT_OK(molt_db_conn_connect(p->ml, ci, &o, notice_connect_cb, p,
                                   &p->conn, NULL), NULL);
    molt_db_conninfo_free(ci);
    while (!p->connect_done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(p->connect_status, &p->err);
    pgt_exec_ok(p, "DO $$BEGIN RAISE NOTICE 'hello %', 42; END$$");
    ASSERT_EQ_INT(notices, 1);
    ASSERT_EQ_STR(notice_text, "NOTICE|00000|hello 42");
    pgt_close(p);
}

typedef struct notes_seen {
    int n;
    int32_t pid[4];
    char channel[4][80], payload[4][80];
} notes_seen;

static void on_notification(molt_db_conn *c, int32_t pid, const char *channel,
                            const char *payload, void *ud)
{
    (void)c;
    notes_seen *s = ud;
    if (s->n < 4) {
        s->pid[s->n] = pid;
        snprintf(s->channel[s->n], sizeof s->channel[0], "%s", channel);
        snprintf(s->payload[s->n], sizeof s->payload[0], "%s", payload);
    }
    s->n++;
}

/* A listener that has nothing in flight still gets what another session
 * notifies, with the notifier's pid, the exact channel (case and quotes
 * kept) and the payload. */
TEST(notifications_reach_the_callback)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    molt_db_conninfo *ci = NULL;
    ASSERT_OK(molt_db_conninfo_parse(dsn, &ci, NULL), NULL);
    notes_seen seen = {0};
    pgt_conn *l = calloc(1, sizeof *l);
    uv_loop_init(&l->loop);
    ASSERT_OK(molt_db_loop_libuv_new(&l->loop, &l->ml, NULL), NULL);
    molt_db_conn_options o = {NULL, NULL, NULL, NULL, on_notification, &seen};
    ASSERT_OK(molt_db_conn_connect(l->ml, ci, &o, notice_connect_cb, l,
                                   &l->conn, NULL), NULL);
    molt_db_conninfo_free(ci);
    while (!l->connect_done)
        uv_run(&l->loop, UV_RUN_ONCE);
    ASSERT_OK(l->connect_status, &l->err);
    pgt_exec_ok(l, "LISTEN \"Mixed\"\"Case\"");

    pgt_conn *n = pgt_connect(dsn);
    int32_t npid, secret;
    ASSERT_OK(molt_db_conn_backend_key(n->conn, &npid, &secret), NULL);
    pgt_exec_ok(n, "NOTIFY \"Mixed\"\"Case\", 'first'");
    pgt_exec_ok(n, "NOTIFY mixed, 'not listened'");
    pgt_exec_ok(n, "SELECT pg_notify('Mixed\"Case', 'sec''ond')");
    double t0 = now_s();
    while (seen.n < 2 && now_s() - t0 < 5.0) {
        uv_run(&l->loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    ASSERT_EQ_INT(seen.n, 2);
    ASSERT_EQ_STR(seen.channel[0], "Mixed\"Case");
    ASSERT_EQ_STR(seen.payload[0], "first");
    ASSERT_EQ_STR(seen.payload[1], "sec'ond");
    ASSERT_EQ_INT(seen.pid[0], npid);
    ASSERT_EQ_INT(seen.pid[1], npid);
    /* a connection without the callback drops them and goes on working */
    pgt_exec_ok(n, "LISTEN x; NOTIFY x, 'to myself'");
    pgt_exec_ok(n, "SELECT 1");
    pgt_close(n);
    pgt_close(l);
}

static int refused_after_close;

static void close_from_callback(void *ud, int status, const molt_db_error *err)
{
    pgt_conn *p = ud;
    (void)status;
    (void)err;
    molt_db_conn_close(p->conn, NULL, NULL);
    /* until the close callback, the handle is valid and refuses requests */
    molt_db_result_handler h = {0};
    refused_after_close =
        molt_db_conn_simple_query(p->conn, "SELECT 3", &h) == MOLT_DB_ECLOSED;
}

TEST(close_fails_pending_requests)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_result *slow = calloc(1, sizeof *slow);
    molt_db_result_handler h = pgt_handler_(slow);
    ASSERT_OK(molt_db_conn_query(p->conn, "SELECT pg_sleep(5)", 0, NULL, &h), NULL);
    pgt_result *queued = calloc(1, sizeof *queued);
    molt_db_result_handler h2 = pgt_handler_(queued);
    ASSERT_OK(molt_db_conn_simple_query(p->conn, "SELECT 1", &h2), NULL);
    uv_run(&p->loop, UV_RUN_NOWAIT);
    double t0 = now_s();
    molt_db_conn_close(p->conn, NULL, NULL);
    ASSERT(slow->done && queued->done);
    ASSERT_CODE(slow->status, MOLT_DB_ECLOSED);
    ASSERT_CODE(queued->status, MOLT_DB_ECLOSED);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    ASSERT(now_s() - t0 < 1.0);
    molt_db_loop_free(p->ml);
    ASSERT_EQ_INT(uv_loop_close(&p->loop), 0);
    pgt_result_free(slow);
    pgt_result_free(queued);
    free(p);

    /* closing from inside a completion callback */
    p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_result *after = calloc(1, sizeof *after);
    molt_db_result_handler h3 = {NULL, NULL, NULL, close_from_callback, p};
    molt_db_result_handler h4 = pgt_handler_(after);
    ASSERT_OK(molt_db_conn_simple_query(p->conn, "SELECT 1", &h3), NULL);
    ASSERT_OK(molt_db_conn_simple_query(p->conn, "SELECT 2", &h4), NULL);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    ASSERT(after->done);
    ASSERT_CODE(after->status, MOLT_DB_ECLOSED);
    ASSERT(refused_after_close);
    molt_db_loop_free(p->ml);
    ASSERT_EQ_INT(uv_loop_close(&p->loop), 0);
    pgt_result_free(after);
    free(p);
}

/* A result callback that closes the connection and refuses what it got:
 * the close completes the request (on_done once, ECLOSED) and frees it, so
 * the connection must not touch it afterwards (ASan checks). */
typedef struct {
    pgt_conn *p;
    int where; /* 0 on_columns, 1 on_row, 2 on_command */
    int done, status;
} closer;

static int closer_columns(void *ud, const molt_db_column *cols, size_t n)
{
    closer *k = ud;
    (void)cols;
    (void)n;
    if (k->where != 0)
        return MOLT_DB_OK;
    molt_db_conn_close(k->p->conn, NULL, NULL);
    return MOLT_DB_EINVAL;
}

static int closer_row(void *ud, const molt_db_field *f, size_t n)
{
    closer *k = ud;
    (void)f;
    (void)n;
    if (k->where != 1)
        return MOLT_DB_OK;
    molt_db_conn_close(k->p->conn, NULL, NULL);
    return MOLT_DB_EINVAL;
}

static void closer_command(void *ud, const char *tag)
{
    closer *k = ud;
    (void)tag;
    if (k->where == 2)
        molt_db_conn_close(k->p->conn, NULL, NULL);
}

static void closer_done(void *ud, int status, const molt_db_error *err)
{
    closer *k = ud;
    (void)err;
    k->done++;
    k->status = status;
}

TEST(close_from_a_result_callback)
{
    for (int simple = 0; simple < 2; simple++)
        for (int where = 0; where < 3; where++) {
            closer k = {pgt_connect(test_env_or_skip("MOLT_TEST_DSN")), where, 0, 0};
            molt_db_result_handler h = {closer_columns, closer_row, closer_command,
                                        closer_done, &k};
            const char *sql = "SELECT g FROM generate_series(1, 3) g";
            ASSERT_OK(simple ? molt_db_conn_simple_query(k.p->conn, sql, &h)
                             : molt_db_conn_query(k.p->conn, sql, 0, NULL, &h),
                      NULL);
            uv_run(&k.p->loop, UV_RUN_DEFAULT);
            ASSERT_EQ_INT(k.done, 1);
            ASSERT_CODE(k.status, MOLT_DB_ECLOSED);
            molt_db_loop_free(k.p->ml);
            ASSERT_EQ_INT(uv_loop_close(&k.p->loop), 0);
            free(k.p);
        }
}

TEST(terminated_backend_fails_cleanly)
{
    pgt_conn *victim = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_conn *killer = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    int32_t pid, key;
    ASSERT_OK(molt_db_conn_backend_key(victim->conn, &pid, &key), NULL);
    pgt_result *slow = calloc(1, sizeof *slow);
    molt_db_result_handler h = pgt_handler_(slow);
    ASSERT_OK(molt_db_conn_query(victim->conn, "SELECT pg_sleep(30)", 0, NULL, &h), NULL);
    uv_run(&victim->loop, UV_RUN_NOWAIT);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", (int)pid);
    pgt_exec_ok(killer, sql);
    pgt_wait_(victim, slow);
    ASSERT(slow->status == MOLT_DB_ESERVER || slow->status == MOLT_DB_EIO);
    if (slow->status == MOLT_DB_ESERVER)
        ASSERT_EQ_STR(slow->err.sqlstate, "57P01");
    /* the next request fails at once: the connection is broken */
    pgt_result *next = pgt_simple(victim, "SELECT 1");
    if (next->status == MOLT_DB_OK)
        FAIL_AT("a request on a terminated connection succeeded");
    ASSERT(!molt_db_conn_is_ready(victim->conn));
    pgt_result_free(next);
    pgt_result_free(slow);
    pgt_close(victim);
    pgt_close(killer);
}


typedef struct cancel_state {
    int done;
    int status;
    double at;
} cancel_state;

static void on_cancel(void *ud, int status, const molt_db_error *err)
{
    cancel_state *s = ud;
    if (status != MOLT_DB_OK && err)
        fprintf(stderr, "cancel: %s\n", err->message);
    s->status = status;
    s->done = 1;
    s->at = now_s();
}

static void cancel_sleep_on(const char *dsn, int want_tls)
{
    pgt_conn *p = pgt_connect(dsn);
    ASSERT_EQ_INT(molt_db_conn_uses_tls(p->conn), want_tls);
    pgt_result *slow = calloc(1, sizeof *slow);
    molt_db_result_handler h = pgt_handler_(slow);
    ASSERT_OK(molt_db_conn_query(p->conn, "SELECT pg_sleep(30)", 0, NULL, &h), NULL);
    /* let the server start sleeping */
    double until = now_s() + 0.3;
    while (now_s() < until)
        uv_run(&p->loop, UV_RUN_NOWAIT);
    ASSERT(!slow->done);
    cancel_state cs = {0};
    double t0 = now_s();
    ASSERT_OK(molt_db_conn_cancel(p->conn, 2000, on_cancel, &cs), NULL);
    pgt_wait_(p, slow);
    double dt = now_s() - t0;
    ASSERT_CODE(slow->status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(slow->err.sqlstate, "57014");
    if (dt > 0.5)
        FAIL_AT("the cancelled query ended %.3f s after the cancel", dt);
    while (!cs.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(cs.status, NULL);
    ASSERT_EQ_INT(molt_db_conn_tx_status(p->conn), 'I');
    pgt_result *r = pgt_query(p, "SELECT 7::int4", 0, NULL);
    ASSERT_OK(r->status, &r->err);
    pgt_result_free(r);
    pgt_result_free(slow);
    pgt_close(p);
}

TEST(cancel_stops_the_server_query)
{
    char dsn[1024];
    const char *base = test_env_or_skip("MOLT_TEST_DSN");
    snprintf(dsn, sizeof dsn, "%s?sslmode=disable", base);
    cancel_sleep_on(dsn, 0);
    snprintf(dsn, sizeof dsn, "%s?sslmode=require", base);
    cancel_sleep_on(dsn, 1);  /* the CancelRequest goes over TLS too */
    cancel_sleep_on(test_env_or_skip("MOLT_TEST_DSN_SOCKET"), 0);
    /* a cancel with nothing running is harmless */
    pgt_conn *p = pgt_connect(base);
    cancel_state cs = {0};
    ASSERT_OK(molt_db_conn_cancel(p->conn, 2000, on_cancel, &cs), NULL);
    while (!cs.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(cs.status, NULL);
    pgt_exec_ok(p, "SELECT 1");
    pgt_close(p);
}

static int broken_calls;
static int broken_code;

static void on_broken(molt_db_conn *c, int code, const molt_db_error *err, void *ud)
{
    (void)c;
    (void)err;
    (void)ud;
    broken_calls++;
    broken_code = code;
}

TEST(broken_callback_runs_once)
{
    const char *dsn = test_env_or_skip("MOLT_TEST_DSN");
    molt_db_conninfo *ci = NULL;
    ASSERT_OK(molt_db_conninfo_parse(dsn, &ci, NULL), NULL);
    pgt_conn *p = calloc(1, sizeof *p);
    uv_loop_init(&p->loop);
    ASSERT_OK(molt_db_loop_libuv_new(&p->loop, &p->ml, NULL), NULL);
    molt_db_conn_options o = {NULL, NULL, on_broken, NULL, NULL, NULL};
    ASSERT_OK(molt_db_conn_connect(p->ml, ci, &o, notice_connect_cb, p, &p->conn,
                                   NULL), NULL);
    molt_db_conninfo_free(ci);
    while (!p->connect_done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(p->connect_status, &p->err);
    pgt_conn *killer = pgt_connect(dsn);
    int32_t pid, key;
    ASSERT_OK(molt_db_conn_backend_key(p->conn, &pid, &key), NULL);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", (int)pid);
    pgt_exec_ok(killer, sql);
    double until = now_s() + 5;
    while (broken_calls == 0 && now_s() < until)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_EQ_INT(broken_calls, 1);
    ASSERT(broken_code < 0);
    ASSERT(!molt_db_conn_is_ready(p->conn));
    pgt_close(killer);
    pgt_close(p);
}

typedef struct copy_state {
    pgt_conn *p;
    uint64_t bytes, lines, rows;
    int status;
    int done;
    int next_line, total_lines;
    int drains;
    int fail_it;
    char sqlstate[6];
} copy_state;

static int copy_out_data(void *ud, const uint8_t *d, size_t n)
{
    copy_state *s = ud;
    s->bytes += n;
    for (size_t i = 0; i < n; i++)
        s->lines += d[i] == '\n';
    return MOLT_DB_OK;
}

static void copy_done(void *ud, int status, const molt_db_error *err, uint64_t rows)
{
    copy_state *s = ud;
    s->status = status;
    s->rows = rows;
    if (err)
        memcpy(s->sqlstate, err->sqlstate, 6);
    s->done = 1;
}

/* Produce lines until the send buffer holds 256 KiB, then wait for on_drain. */
static void copy_produce(void *ud)
{
    copy_state *s = ud;
    char line[64];
    while (s->next_line < s->total_lines) {
        if (molt_db_conn_send_pending(s->p->conn) > 256 * 1024)
            return;
        int n = snprintf(line, sizeof line, "%d\trow %d\n", s->next_line, s->next_line);
        ASSERT_OK(molt_db_conn_copy_data(s->p->conn, (const uint8_t *)line, (size_t)n), NULL);
        s->next_line++;
    }
    if (s->fail_it)
        ASSERT_OK(molt_db_conn_copy_fail(s->p->conn, "test says no"), NULL);
    else
        ASSERT_OK(molt_db_conn_copy_end(s->p->conn), NULL);
}

static void copy_drained(void *ud)
{
    copy_state *s = ud;
    s->drains++;
    copy_produce(ud);
}

TEST(copy_in_and_out)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_exec_ok(p, "CREATE TEMP TABLE cp (id int PRIMARY KEY, t text)");
    copy_state in = {0};
    in.p = p;
    in.total_lines = 300000;
    molt_db_copy_in_handler ih = {copy_produce, copy_drained, copy_done, &in};
    ASSERT_OK(molt_db_conn_copy_in(p->conn, "COPY cp FROM STDIN", &ih), NULL);
    /* queued behind the COPY: must wait for it, then see all its rows */
    pgt_result *after = calloc(1, sizeof *after);
    molt_db_result_handler h = pgt_handler_(after);
    ASSERT_OK(molt_db_conn_query(p->conn, "SELECT count(*)::int8 FROM cp", 0, NULL, &h),
              NULL);
    while (!in.done || !after->done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(in.status, NULL);
    ASSERT_EQ_UINT(in.rows, 300000);
    ASSERT_OK(after->status, &after->err);
    ASSERT_EQ_UINT(be64(after->data[0]), 300000);
    pgt_result_free(after);

    copy_state out = {0};
    molt_db_copy_out_handler oh = {copy_out_data, copy_done, &out};
    ASSERT_OK(molt_db_conn_copy_out(p->conn, "COPY cp TO STDOUT", &oh), NULL);
    while (!out.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(out.status, NULL);
    ASSERT_EQ_UINT(out.rows, 300000);
    ASSERT_EQ_UINT(out.lines, 300000);

    /* binary format starts with the PGCOPY signature */
    copy_state bin = {0};
    ASSERT_OK(molt_db_conn_copy_out(p->conn,
                                    "COPY (SELECT 1::int4) TO STDOUT (FORMAT binary)",
                                    &oh), NULL);
    (void)bin;
    out = (copy_state){0};
    while (!out.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(out.status, NULL);
    ASSERT_EQ_UINT(out.bytes, 11 + 4 + 4 + 2 + 4 + 4 + 2);

    /* CopyFail aborts: nothing is added and the connection stays usable */
    copy_state fail = {0};
    fail.p = p;
    fail.total_lines = 10;
    fail.fail_it = 1;
    molt_db_copy_in_handler fh = {copy_produce, copy_drained, copy_done, &fail};
    ASSERT_OK(molt_db_conn_copy_in(p->conn, "COPY cp FROM STDIN", &fh), NULL);
    while (!fail.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_CODE(fail.status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(fail.sqlstate, "57014");
    /* a server error during COPY (duplicate key) ends it cleanly too */
    copy_state dup = {0};
    dup.p = p;
    dup.total_lines = 5;
    molt_db_copy_in_handler dh = {copy_produce, copy_drained, copy_done, &dup};
    ASSERT_OK(molt_db_conn_copy_in(p->conn, "COPY cp FROM STDIN", &dh), NULL);
    while (!dup.done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_CODE(dup.status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(dup.sqlstate, "23505");
    pgt_result *r = pgt_simple(p, "SELECT count(*) FROM cp");
    ASSERT_OK(r->status, &r->err);
    ASSERT_EQ_STR(pgt_text(r, 0, 0), "300000");
    pgt_result_free(r);
    /* copy calls outside a COPY are state errors */
    ASSERT_CODE(molt_db_conn_copy_data(p->conn, (const uint8_t *)"x", 1), MOLT_DB_ESTATE);
    ASSERT_CODE(molt_db_conn_copy_end(p->conn), MOLT_DB_ESTATE);
    pgt_close(p);
}

TEST_MAIN(TEST_ENTRY(connect_trust_tcp_and_socket), TEST_ENTRY(auth_md5_and_scram),
          TEST_ENTRY(auth_wrong_or_missing_password),
          TEST_ENTRY(auth_password_from_passfile), TEST_ENTRY(sslmodes),
          TEST_ENTRY(client_certificate), TEST_ENTRY(connect_failures),
          TEST_ENTRY(multi_host_fallback), TEST_ENTRY(connect_timeout),
          TEST_ENTRY(query_binary_and_text_results),
          TEST_ENTRY(submit_checks_the_descriptor), TEST_ENTRY(server_errors_keep_fields),
          TEST_ENTRY(simple_protocol_multi_statement),
          TEST_ENTRY(pipelined_requests_fail_independently),
          TEST_ENTRY(prepare_execute_close), TEST_ENTRY(large_results_stream),
          TEST_ENTRY(notices_reach_the_callback),
          TEST_ENTRY(notifications_reach_the_callback),
          TEST_ENTRY(close_fails_pending_requests), TEST_ENTRY(close_from_a_result_callback),
          TEST_ENTRY(terminated_backend_fails_cleanly),
          TEST_ENTRY(cancel_stops_the_server_query),
          TEST_ENTRY(broken_callback_runs_once), TEST_ENTRY(copy_in_and_out))
