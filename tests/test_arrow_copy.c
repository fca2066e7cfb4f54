/* Binary COPY parser: byte vectors split at every boundary, malformed
 * streams, and molt_db_conn_copy_query into the Arrow reader. */
#include "molt_db/arrow.h"
#include "molt_db/arrow_copy.h"
#include "molt_db/buf.h"
#include "molt_db/copy_binary.h"
#include "pgtest.h"
#include "types_internal.h"

#include <errno.h>
#include <unistd.h>

static const uint8_t HDR[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r',
                                '\n', 0, 0, 0, 0, 0, 0, 0, 0, 0};

typedef struct seen {
    int rows;
    int64_t sum;
    int nulls;
    size_t text_bytes;
} seen;

static int on_row(void *ud, const molt_db_field *f, size_t n)
{
    seen *s = ud;
    ASSERT_EQ_UINT(n, 2);
    s->rows++;
    if (f[0].len < 0)
        s->nulls++;
    else {
        ASSERT_EQ_INT(f[0].len, 4);
        s->sum += (int32_t)((uint32_t)f[0].data[0] << 24 | (uint32_t)f[0].data[1] << 16 |
                            (uint32_t)f[0].data[2] << 8 | f[0].data[3]);
    }
    if (f[1].len > 0)
        s->text_bytes += (size_t)f[1].len;
    return MOLT_DB_OK;
}

/* A stream of 3 tuples (int4, text): (1,"ab"), (NULL,""), (40,"xyz"), with
 * a 2-byte header extension. */
static void build_stream(molt_db_buf *b)
{
    molt_db_buf_put(b, HDR, 15);
    molt_db_buf_put_u32(b, 2);
    molt_db_buf_put(b, "ee", 2);
    molt_db_buf_put_u16(b, 2);
    molt_db_buf_put_u32(b, 4); molt_db_buf_put_u32(b, 1);
    molt_db_buf_put_u32(b, 2); molt_db_buf_put(b, "ab", 2);
    molt_db_buf_put_u16(b, 2);
    molt_db_buf_put_u32(b, 0xFFFFFFFFu);
    molt_db_buf_put_u32(b, 0);
    molt_db_buf_put_u16(b, 2);
    molt_db_buf_put_u32(b, 4); molt_db_buf_put_u32(b, 40);
    molt_db_buf_put_u32(b, 3); molt_db_buf_put(b, "xyz", 3);
    molt_db_buf_put_u16(b, 0xFFFF);
    ASSERT_OK(molt_db_buf_ok(b), NULL);
}

static int parse_split(const uint8_t *p, size_t n, size_t chunk, seen *s,
                       molt_db_error *err)
{
    molt_db_copy_parser *cp = NULL;
    memset(s, 0, sizeof *s);
    ASSERT_OK(molt_db_copy_parser_new(2, on_row, s, &cp, err), err);
    int rc = MOLT_DB_OK;
    for (size_t off = 0; off < n && rc == MOLT_DB_OK; off += chunk)
        rc = molt_db_copy_parser_feed(cp, p + off, n - off < chunk ? n - off : chunk,
                                      err);
    if (rc == MOLT_DB_OK)
        rc = molt_db_copy_parser_finish(cp, err);
    molt_db_copy_parser_free(cp);
    return rc;
}

TEST(parser_every_split)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    build_stream(&b);
    molt_db_error err;
    molt_db_error_init(&err);
    for (size_t chunk = 1; chunk <= b.len; chunk++) {
        seen s;
        ASSERT_OK(parse_split(b.data, b.len, chunk, &s, &err), &err);
        ASSERT_EQ_INT(s.rows, 3);
        ASSERT_EQ_INT(s.sum, 41);
        ASSERT_EQ_INT(s.nulls, 1);
        ASSERT_EQ_UINT(s.text_bytes, 5);
    }
    molt_db_buf_free(&b);
}

TEST(parser_rejects_malformed)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    build_stream(&b);
    molt_db_error err;
    molt_db_error_init(&err);
    seen s;
    uint8_t *m = malloc(b.len + 4);
    ASSERT(m != NULL);

    /* every truncation ends before the trailer */
    for (size_t n = 0; n < b.len; n++)
        ASSERT_CODE(parse_split(b.data, n, 7, &s, &err), MOLT_DB_EPROTO);
    /* bad signature */
    memcpy(m, b.data, b.len);
    m[3] = 'X';
    ASSERT_CODE(parse_split(m, b.len, b.len, &s, &err), MOLT_DB_EPROTO);
    ASSERT_CONTAINS(err.message, "signature");
    /* the OIDs flag (bit 16) */
    memcpy(m, b.data, b.len);
    m[13] = 1;
    ASSERT_CODE(parse_split(m, b.len, b.len, &s, &err), MOLT_DB_EPROTO);
    /* a field count that differs from the columns' */
    memcpy(m, b.data, b.len);
    m[22] = 3;
    ASSERT_CODE(parse_split(m, b.len, 5, &s, &err), MOLT_DB_EPROTO);
    /* a field length below -1 */
    memcpy(m, b.data, b.len);
    m[23] = 0xFF; m[24] = 0xFF; m[25] = 0xFF; m[26] = 0xFE;
    ASSERT_CODE(parse_split(m, b.len, 3, &s, &err), MOLT_DB_EPROTO);
    /* a field length past the end of the stream */
    memcpy(m, b.data, b.len);
    m[23] = 0x7F;
    ASSERT_CODE(parse_split(m, b.len, b.len, &s, &err), MOLT_DB_EPROTO);
    /* data after the trailer */
    memcpy(m, b.data, b.len);
    memcpy(m + b.len, "\0\2", 2);
    ASSERT_CODE(parse_split(m, b.len + 2, 4, &s, &err), MOLT_DB_EPROTO);
    ASSERT_CONTAINS(err.message, "after the trailer");
    free(m);
    molt_db_buf_free(&b);
}

/* ---- against the server ------------------------------------------------- */

typedef struct tally {
    int64_t rows, sum;
    int batches, done, status;
    char tag[32];
    molt_db_error err;
} tally;

static int t_batch(void *ud, struct ArrowArray *a)
{
    tally *t = ud;
    t->batches++;
    t->rows += a->length;
    const int64_t *v = a->children[0]->buffers[1];
    for (int64_t i = 0; i < a->length; i++)
        t->sum += v[i];
    return MOLT_DB_OK;
}

static void t_done(void *ud, int status, const molt_db_error *err)
{
    tally *t = ud;
    t->done = 1;
    t->status = status;
    if (err)
        molt_db_error_copy(&t->err, err);
}

static void run(pgt_conn *p, const char *sql, tally *t)
{
    memset(t, 0, sizeof *t);
    molt_db_arrow_reader_options o = {1000, 1, NULL, t_batch, t_done, t};
    molt_db_arrow_reader *r = NULL;
    ASSERT_OK(molt_db_arrow_reader_new(&o, &r, NULL), NULL);
    molt_db_result_handler h = molt_db_arrow_reader_handler(r);
    ASSERT_OK(molt_db_conn_copy_query(p->conn, sql, &h), NULL);
    while (!t->done)
        uv_run(&p->loop, UV_RUN_ONCE);
    molt_db_arrow_reader_free(r);
}

TEST(copy_query_into_arrow)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    tally t;
    run(p, "SELECT g::int8 FROM generate_series(1, 100000) g", &t);
    ASSERT_OK(t.status, &t.err);
    ASSERT_EQ_INT(t.rows, 100000);
    ASSERT_EQ_INT(t.sum, INT64_C(5000050000));
    ASSERT_EQ_INT(t.batches, 100);

    /* an error from the server ends it cleanly, then the connection works */
    run(p, "SELECT (1/(g-50000))::int8 FROM generate_series(1, 100000) g", &t);
    ASSERT_CODE(t.status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(t.err.sqlstate, "22012");
    molt_db_error_clear(&t.err);
    run(p, "SELECT 7::int8", &t);
    ASSERT_OK(t.status, &t.err);
    ASSERT_EQ_INT(t.sum, 7);

    /* SQL that would close the COPY's parentheses itself fails its describe
     * and never runs as a COPY: the server writes no file (the test role is
     * a superuser, so it could) */
    char path[64], sql[160];
    snprintf(path, sizeof path, "/tmp/molt_copy_escape_%d", (int)getpid());
    unlink(path);
    snprintf(sql, sizeof sql, "SELECT 1::int8) TO '%s' --", path);
    run(p, sql, &t);
    ASSERT_CODE(t.status, MOLT_DB_ESERVER);
    ASSERT_EQ_STR(t.err.sqlstate, "42601");
    molt_db_error_clear(&t.err);
    ASSERT(access(path, F_OK) != 0);
    run(p, "SELECT 8::int8 -- a comment", &t);
    ASSERT_OK(t.status, &t.err);
    ASSERT_EQ_INT(t.sum, 8);
    pgt_close(p);
}

/* ---- COPY FROM STDIN from Arrow batches ---------------------------------- */

typedef struct held {
    struct ArrowSchema schema;
    struct ArrowArray batches[64];
    size_t n, next;
    int done, status;
    uint64_t rows;
    molt_db_error err;
} held;

static int h_schema(void *ud, struct ArrowSchema *s)
{
    held *h = ud;
    if (h->schema.release)
        h->schema.release(&h->schema);
    h->schema = *s; /* move */
    s->release = NULL;
    return MOLT_DB_OK;
}

static int h_batch(void *ud, struct ArrowArray *a)
{
    held *h = ud;
    ASSERT(h->n < 64);
    h->batches[h->n++] = *a; /* move */
    a->release = NULL;
    return MOLT_DB_OK;
}

static void h_done(void *ud, int status, const molt_db_error *err)
{
    held *h = ud;
    h->done = 1;
    h->status = status;
    if (err)
        molt_db_error_copy(&h->err, err);
}

/* An ArrowArrayStream over batches held in memory (moved out one by one). */
static int hs_schema(struct ArrowArrayStream *st, struct ArrowSchema *out)
{
    held *h = st->private_data;
    if (h->schema.release == NULL) /* this test stream gives it once */
        return EINVAL;
    *out = h->schema; /* move */
    h->schema.release = NULL;
    return 0;
}

static int hs_next(struct ArrowArrayStream *st, struct ArrowArray *out)
{
    held *h = st->private_data;
    if (h->next == h->n) {
        out->release = NULL;
        return 0;
    }
    *out = h->batches[h->next];
    h->batches[h->next++].release = NULL;
    return 0;
}

static const char *hs_error(struct ArrowArrayStream *st)
{
    (void)st;
    return NULL;
}

static void hs_release(struct ArrowArrayStream *st)
{
    held *h = st->private_data;
    for (size_t i = h->next; i < h->n; i++)
        if (h->batches[i].release)
            h->batches[i].release(&h->batches[i]);
    h->next = h->n;
    st->release = NULL;
}

static void copy_done_cb(void *ud, int status, const molt_db_error *err, uint64_t rows)
{
    held *h = ud;
    h->done = 1;
    h->status = status;
    h->rows = rows;
    if (err)
        molt_db_error_copy(&h->err, err);
}

static void hold_query(pgt_conn *p, const char *sql, held *h)
{
    molt_db_arrow_reader_options o = {700, 0, h_schema, h_batch, h_done, h};
    molt_db_arrow_reader *r = NULL;
    ASSERT_OK(molt_db_arrow_reader_new(&o, &r, NULL), NULL);
    molt_db_result_handler rh = molt_db_arrow_reader_handler(r);
    ASSERT_OK(molt_db_conn_query(p->conn, sql, 0, NULL, &rh), NULL);
    while (!h->done)
        uv_run(&p->loop, UV_RUN_ONCE);
    ASSERT_OK(h->status, &h->err);
    molt_db_arrow_reader_free(r);
}

static void copy_held(pgt_conn *p, const char *table, held *h)
{
    struct ArrowArrayStream st = {hs_schema, hs_next, hs_error, hs_release, h};
    h->done = 0;
    h->next = 0;
    molt_db_error_clear(&h->err);
    ASSERT_OK(molt_db_arrow_copy_in(p->conn, table, &st, copy_done_cb, h), NULL);
    ASSERT(st.release == NULL); /* moved in */
    while (!h->done)
        uv_run(&p->loop, UV_RUN_ONCE);
}

static int64_t count(pgt_conn *p, const char *sql)
{
    pgt_result *r = pgt_simple(p, sql);
    ASSERT_OK(r->status, &r->err);
    int64_t n = atoll(pgt_text(r, 0, 0));
    pgt_result_free(r);
    return n;
}

static void release_held(held *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->batches[i].release)
            h->batches[i].release(&h->batches[i]);
    if (h->schema.release)
        h->schema.release(&h->schema);
    molt_db_error_clear(&h->err);
}

/* Reads table src as Arrow and copies it into dst, a new table like it:
 * `rows` rows go in. h holds the batches (release_held). */
static void copy_like(pgt_conn *p, const char *src, const char *dst, uint64_t rows,
                      held *h)
{
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE TEMP TABLE %s (LIKE %s)", dst, src);
    pgt_exec_ok(p, sql);
    memset(h, 0, sizeof *h);
    snprintf(sql, sizeof sql, "SELECT * FROM %s", src);
    hold_query(p, sql, h);
    copy_held(p, dst, h);
    ASSERT_OK(h->status, &h->err);
    ASSERT_EQ_UINT(h->rows, rows);
}

/* The rows of queries a and b are the same multiset (EXCEPT ALL both ways). */
static void assert_same_rows(pgt_conn *p, const char *a, const char *b)
{
    char sql[4096];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s EXCEPT ALL %s) x", a, b);
    ASSERT_EQ_INT(count(p, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s EXCEPT ALL %s) x", b, a);
    ASSERT_EQ_INT(count(p, sql), 0);
}

/* src's rows into `table`, like src but with `alter` applied to it: the
 * copy fails with ETYPE naming `column` and inserts nothing. */
static void assert_copy_refused(pgt_conn *p, const char *src, const char *table,
                                const char *alter, const char *column)
{
    char sql[256];
    held h;
    memset(&h, 0, sizeof h);
    snprintf(sql, sizeof sql, "SELECT * FROM %s", src);
    hold_query(p, sql, &h);
    snprintf(sql, sizeof sql, "CREATE TEMP TABLE %s (LIKE %s)", table, src);
    pgt_exec_ok(p, sql);
    snprintf(sql, sizeof sql, "ALTER TABLE %s %s", table, alter);
    pgt_exec_ok(p, sql);
    copy_held(p, table, &h);
    ASSERT_CODE(h.status, MOLT_DB_ETYPE);
    ASSERT_CONTAINS(h.err.message, column);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    ASSERT_EQ_INT(count(p, sql), 0);
    release_held(&h);
}

TEST(arrow_copy_in_round_trip)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_exec_ok(p,
        "CREATE TEMP TABLE src AS SELECT g::int8 AS id, "
        "nullif(g % 7, 0)::int2 AS i2, (g * 3)::int4 AS i4, (g * 0.5)::float4 AS f4, "
        "CASE WHEN g % 5 = 0 THEN NULL ELSE g / 3.0 END::float8 AS f8, "
        "(g * 1.125)::numeric(12,3) AS n, "
        "CASE WHEN g % 4 = 0 THEN NULL ELSE 'ü-' || g END AS t, "
        "decode(md5(g::text), 'hex') AS by, md5(g::text)::uuid AS u, "
        "date '1950-01-01' + g AS d, time '00:00:01' + g * interval '1 s' AS tm, "
        "timestamp '1900-01-01' + g * interval '1 day 1 us' AS ts, "
        "timestamptz '2020-01-01Z' + g * interval '1 min' AS tz, "
        "make_interval(months => g % 13, days => g % 31, secs => g) AS iv, "
        "jsonb_build_object('g', g) AS j, g % 2 = 0 AS b, g::oid AS o "
        "FROM generate_series(1, 5000) g");
    pgt_exec_ok(p, "INSERT INTO src (id, d, ts) VALUES (0, 'infinity', '-infinity')");
    pgt_exec_ok(p, "CREATE TEMP TABLE dst (LIKE src)");
    held h;
    memset(&h, 0, sizeof h);
    hold_query(p, "SELECT * FROM src", &h);
    ASSERT(h.n >= 8);
    copy_held(p, "dst", &h);
    ASSERT_OK(h.status, &h.err);
    ASSERT_EQ_UINT(h.rows, 5001);
    assert_same_rows(p, "SELECT * FROM src", "SELECT * FROM dst");
    release_held(&h);

    /* a target column of another type: nothing is copied, the error names it */
    assert_copy_refused(p, "src", "bad", "ALTER COLUMN i4 TYPE int2", "\"i4\"");
    /* and the connection goes on */
    ASSERT_EQ_INT(count(p, "SELECT count(*) FROM dst"), 5001);
    pgt_close(p);
}

/* One expression of g (1..300) per scalar type of the type table. Every
 * line whose type is read in binary needs one: its values are read as
 * Arrow, copied back and compared as text, so a type is not whole before
 * its Arrow column goes back into it. */
static const struct sample {
    uint32_t oid;
    const char *expr;
} samples[] = {
    {MOLT_DB_OID_BOOL, "g % 3 = 0"},
    {MOLT_DB_OID_BYTEA, "decode(md5(g::text), 'hex')"},
    {MOLT_DB_OID_CHAR, "chr(1 + g % 250)::\"char\""},
    {MOLT_DB_OID_NAME, "('n' || g)::name"},
    {MOLT_DB_OID_INT8, "g::int8 * 1000000007 * (g % 2 * 2 - 1)"},
    {MOLT_DB_OID_INT2, "(g - 150)::int2"},
    {MOLT_DB_OID_INT4, "(g * 7919)::int4"},
    {MOLT_DB_OID_TEXT, "'\u00fc-' || g"},
    {MOLT_DB_OID_OID, "(g::int8 * 14000000)::oid"},
    {MOLT_DB_OID_JSON, "json_build_object('g', g)"},
    {MOLT_DB_OID_FLOAT4, "(g / 7.0)::float4"},
    {MOLT_DB_OID_FLOAT8, "CASE g WHEN 5 THEN 'NaN' WHEN 6 THEN '-Infinity' ELSE g / 7.0 END::float8"},
    {MOLT_DB_OID_BPCHAR, "('b' || g)::char(6)"},
    {MOLT_DB_OID_VARCHAR, "('v' || g)::varchar(10)"},
    {MOLT_DB_OID_DATE, "date '1950-01-01' + g * 37"},
    {MOLT_DB_OID_TIME, "time '00:00:01' + g * interval '277.5 s'"},
    {MOLT_DB_OID_TIMESTAMP, "timestamp '1900-01-01' + g * interval '101 day 1 us'"},
    {MOLT_DB_OID_TIMESTAMPTZ, "timestamptz '2020-01-01Z' + g * interval '1 min'"},
    {MOLT_DB_OID_INTERVAL, "make_interval(months => g % 13 - 6, days => g % 31, secs => g * 1.5)"},
    {MOLT_DB_OID_TIMETZ, "('12:34:56.789+0' || (g % 10) || ':30')::timetz"},
    {MOLT_DB_OID_NUMERIC, "CASE g WHEN 7 THEN 'NaN' ELSE g * 1.125 - 100 END::numeric"},
    {MOLT_DB_OID_UUID, "md5(g::text)::uuid"},
    {MOLT_DB_OID_JSONB, "jsonb_build_object('g', g, 'a', jsonb_build_array(g, 'x'))"},
};

static const char *sample_of(uint32_t oid)
{
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        if (samples[i].oid == oid)
            return samples[i].expr;
    return NULL;
}

TEST(arrow_copy_in_every_scalar)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    molt_db_buf sql = {0}, cols = {0};
    pgt_exec_ok(p, "SET TimeZone = 'UTC'");
    static const char head[] = "CREATE TEMP TABLE every AS SELECT g AS id";
    molt_db_buf_put(&sql, head, sizeof head - 1);
    size_t n = 0;
    for (const molt_db__scalar *t; (t = molt_db__scalar_at(n)) != NULL; n++) {
        if (!molt_db_type_binary_supported(t->oid))
            continue;
        const char *expr = sample_of(t->oid);
        if (expr == NULL)
            FAIL_AT("type %s: no sample in test_arrow_copy.c", molt_db_type_name(t->oid));
        char col[96];
        snprintf(col, sizeof col, ", (%s) AS c%zu", expr, n);
        molt_db_buf_put(&sql, col, strlen(col));
        snprintf(col, sizeof col, ", c%zu::text", n);
        molt_db_buf_put(&cols, col, strlen(col));
    }
    static const char tail[] = " FROM generate_series(1, 300) g";
    molt_db_buf_put(&sql, tail, sizeof tail - 1);
    molt_db_buf_put_u8(&sql, 0);
    molt_db_buf_put_u8(&cols, 0);
    ASSERT_OK(molt_db_buf_ok(&sql), NULL);
    ASSERT_OK(molt_db_buf_ok(&cols), NULL);
    pgt_exec_ok(p, (const char *)sql.data);
    pgt_exec_ok(p, "INSERT INTO every (id) VALUES (0)"); /* NULL in every column */
    held h;
    copy_like(p, "every", "every_back", 301, &h);
    /* as text: json has no equality */
    char a[2048], b[2048];
    snprintf(a, sizeof a, "SELECT id%s FROM every", (const char *)cols.data);
    snprintf(b, sizeof b, "SELECT id%s FROM every_back", (const char *)cols.data);
    assert_same_rows(p, a, b);
    release_held(&h);
    molt_db_buf_free(&sql);
    molt_db_buf_free(&cols);
    pgt_close(p);
}

/* Arrays (NULL elements, empty, 2-D, lower bounds other than 1, arrays of
 * ranges) and ranges (empty, infinite and exclusive bounds) read as Arrow,
 * copied into a table like the source, compared there by the server. */
TEST(arrow_copy_in_arrays_and_ranges)
{
    pgt_conn *p = pgt_connect(test_env_or_skip("MOLT_TEST_DSN"));
    pgt_exec_ok(p,
        "CREATE TEMP TABLE asrc AS SELECT g AS id, "
        "CASE WHEN g % 9 = 0 THEN NULL WHEN g % 7 = 0 THEN '{}'::int4[] "
        "  ELSE ARRAY[g, NULLIF(g % 3, 0), -g]::int4[] END AS a4, "
        "ARRAY['t' || g, NULL, 'ü' || g % 5] AS at, "
        "ARRAY[[g, g + 1, g + 2], [-g, NULL, 0]]::int8[] AS a2, "
        "ARRAY[(g * 0.25)::numeric(8,2), NULL]::numeric(8,2)[] AS an, "
        "CASE WHEN g % 4 = 0 THEN '[0:2]={1.5,2.5,3.5}'::float8[] "
        "  ELSE ARRAY[g / 4.0]::float8[] END AS af, "
        "CASE g % 5 WHEN 0 THEN 'empty'::int4range WHEN 1 THEN int4range(NULL, g) "
        "  WHEN 2 THEN int4range(g, NULL) WHEN 3 THEN NULL "
        "  ELSE int4range(g, g * 2, '[]') END AS r4, "
        "tstzrange(timestamptz '2020-01-01Z' + g * interval '1 h', "
        "  CASE WHEN g % 3 = 0 THEN NULL ELSE timestamptz '2021-01-01Z' END, '(]') AS rt, "
        "daterange(date '2000-01-01' + g, date '2000-01-01' + 2 * g + 1) AS rd, "
        "numrange(g * 0.5, g * 0.75 + 1, '()') AS rn, "
        "ARRAY[int4range(g, g + 10), 'empty', NULL] AS ar "
        "FROM generate_series(1, 3000) g");
    held h;
    copy_like(p, "asrc", "adst", 3000, &h);
    assert_same_rows(p, "SELECT * FROM asrc", "SELECT * FROM adst");
    /* what EXCEPT cannot see: lower bounds, and empty vs NULL */
    ASSERT_EQ_INT(count(p, "SELECT count(*) FROM asrc s JOIN adst d USING (id) "
                           "WHERE array_lower(s.af, 1) IS DISTINCT FROM "
                           "array_lower(d.af, 1) OR (s.a4 IS NULL) <> (d.a4 IS NULL) "
                           "OR (s.r4 IS NULL) <> (d.r4 IS NULL)"), 0);
    ASSERT_EQ_INT(count(p, "SELECT count(*) FROM adst WHERE array_lower(af, 1) = 0"), 750);
    ASSERT_EQ_INT(count(p, "SELECT count(*) FROM adst WHERE isempty(r4)"), 600);
    release_held(&h);

    /* sliced batches: by the batch's offset (rows 6..695 of the first),
     * and by every column's own offset (from row 704 in the second) */
    memset(&h, 0, sizeof h);
    hold_query(p, "SELECT * FROM asrc ORDER BY id", &h);
    ASSERT(h.n >= 3 && h.batches[0].length == 700 && h.batches[1].length == 700);
    h.batches[0].offset = 5;
    h.batches[0].length = 690;
    for (int64_t c = 0; c < h.batches[1].n_children; c++) {
        struct ArrowArray *col = h.batches[1].children[c];
        col->offset += 3;
        col->length -= 3;
        col->null_count = -1;
    }
    h.batches[1].length -= 3;
    pgt_exec_ok(p, "CREATE TEMP TABLE aslice (LIKE asrc)");
    copy_held(p, "aslice", &h);
    ASSERT_OK(h.status, &h.err);
    ASSERT_EQ_UINT(h.rows, 3000 - 13);
    assert_same_rows(p, "SELECT * FROM asrc WHERE id BETWEEN 6 AND 695 OR id >= 704",
                     "SELECT * FROM aslice");
    ASSERT_EQ_INT(count(p, "SELECT count(*) FROM asrc s JOIN aslice d USING (id) "
                           "WHERE array_lower(s.af, 1) IS DISTINCT FROM "
                           "array_lower(d.af, 1) OR (s.a4 IS NULL) <> (d.a4 IS NULL) "
                           "OR (s.r4 IS NULL) <> (d.r4 IS NULL)"), 0);
    release_held(&h);

    /* an array column into a range column: refused by name, nothing copied */
    assert_copy_refused(p, "asrc", "abad", "ALTER COLUMN a4 TYPE int4range USING NULL",
                        "\"a4\"");
    pgt_close(p);
}

TEST_MAIN(TEST_ENTRY(parser_every_split), TEST_ENTRY(parser_rejects_malformed),
          TEST_ENTRY(copy_query_into_arrow), TEST_ENTRY(arrow_copy_in_round_trip),
          TEST_ENTRY(arrow_copy_in_every_scalar),
          TEST_ENTRY(arrow_copy_in_arrays_and_ranges))
