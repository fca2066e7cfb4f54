/* Binary COPY parser: byte vectors split at every boundary, malformed
 * streams, and molt_db_conn_copy_query into the Arrow reader. */
#include "molt_db/arrow.h"
#include "molt_db/buf.h"
#include "molt_db/copy_binary.h"
#include "pgtest.h"

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
    pgt_close(p);
}

TEST_MAIN(TEST_ENTRY(parser_every_split), TEST_ENTRY(parser_rejects_malformed),
          TEST_ENTRY(copy_query_into_arrow))
