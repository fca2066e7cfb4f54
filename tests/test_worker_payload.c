/*
 * db_query / db_exec payloads read in place (worker/payload.c): every
 * parameter type gives the value msgpack-c's unpack gave (a float32 widened
 * to double, a negative integer, the signed 64-bit bounds), a payload
 * larger than the query's inline copy and a statements list parse alike,
 * and bad input is InvalidInput with its message: truncated or trailing
 * bytes, a key given twice, a wrong type, a huge declared length, and an
 * array parameter whose bytes end early (pg_array reads them in place).
 * listen payloads: their channels, and each check's refusal. What a parsed
 * query holds, with and without the payload copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "config.h"
#include "payload.h"
#include "pg_array.h"
#include "test.h"

/* A worker configuration with alias "default" on PostgreSQL, writes allowed. */
static void config_open(mw_config *cfg)
{
    static char *argv[] = {"--stdio", "--db", "default=postgresql://u@h/d",
                           "--allow-write", "default"};
    char err[MW_ERR_SIZE];
    mw_config_init(cfg);
    FILE *devnull = fopen("/dev/null", "w");
    ASSERT(devnull != NULL);
    ASSERT_EQ_INT(mw_config_parse_args(cfg, 5, argv, devnull, err), 0);
    fclose(devnull);
}

static mw_config cfg;

static void str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static int parse_bytes(int write, const void *p, size_t n, mw_query *q, char msg[MW_MSG_SIZE])
{
    return mw_query_parse(q, write, &cfg, (const uint8_t *)p, n, msg);
}

static int parse_sb(int write, msgpack_sbuffer *sb, mw_query *q, char msg[MW_MSG_SIZE])
{
    int rc = parse_bytes(write, sb->data, sb->size, q, msg);
    msgpack_sbuffer_clear(sb);
    return rc;
}

TEST(every_parameter_type_read_in_place)
{
    config_open(&cfg);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    str(&pk, "sql");
    str(&pk, "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 -- a comment that makes "
             "this payload longer than the copy a query holds inline: so it is "
             "copied to an allocation of its own");
    str(&pk, "params");
    msgpack_pack_map(&pk, 2);
    str(&pk, "mode");
    str(&pk, "positional");
    str(&pk, "values");
    msgpack_pack_array(&pk, 10);
    msgpack_pack_map(&pk, 2); /* nil with a type */
    str(&pk, "value");
    msgpack_pack_nil(&pk);
    str(&pk, "type");
    str(&pk, "int4");
    msgpack_pack_true(&pk);
    msgpack_pack_int64(&pk, INT64_MIN);
    msgpack_pack_uint64(&pk, INT64_MAX);
    msgpack_pack_int8(&pk, -5);
    msgpack_pack_float(&pk, 0.1f);
    msgpack_pack_double(&pk, -2.5);
    str(&pk, "h\xc3\xa9");
    msgpack_pack_bin_with_body(&pk, "\0\1", 2);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_nil(&pk);
    mw_query q;
    char msg[MW_MSG_SIZE];
    ASSERT_EQ_INT(parse_sb(0, &sb, &q, msg), 0);
    ASSERT(q.bytes != q.small_bytes); /* more than the inline copy holds */
    const mw_value *v = q.stmts[0].values;
    ASSERT_EQ_INT(q.stmts[0].nvalues, 10);
    ASSERT_EQ_INT(v[0].t, MW_V_NIL);
    ASSERT_EQ_MEM(v[0].type, v[0].type_len, "int4", 4);
    ASSERT(v[1].t == MW_V_BOOL && v[1].i == 1);
    ASSERT(v[2].t == MW_V_INT && v[2].i == INT64_MIN);
    ASSERT(v[3].t == MW_V_INT && v[3].i == INT64_MAX);
    ASSERT(v[4].t == MW_V_INT && v[4].i == -5);
    ASSERT(v[5].t == MW_V_FLOAT && v[5].f == (double)0.1f);
    ASSERT(v[6].t == MW_V_FLOAT && v[6].f == -2.5);
    ASSERT_EQ_INT(v[7].t, MW_V_STR);
    ASSERT_EQ_MEM(v[7].p, v[7].n, "h\xc3\xa9", 3);
    ASSERT_EQ_INT(v[8].t, MW_V_BIN);
    ASSERT_EQ_MEM(v[8].p, v[8].n, "\0\1", 2);
    ASSERT_EQ_INT(v[9].t, MW_V_STR);
    ASSERT_EQ_STR(v[9].p, "{1,NULL}");
    ASSERT_EQ_MEM(v[9].type, v[9].type_len, "int8[]", 6);
    mw_query_free(&q);

    /* named, in a statements list of db_exec, on a small payload */
    msgpack_pack_map(&pk, 2);
    str(&pk, "allow_write");
    msgpack_pack_true(&pk);
    str(&pk, "statements");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 1);
    str(&pk, "sql");
    str(&pk, "SELECT 1");
    msgpack_pack_map(&pk, 2);
    str(&pk, "sql");
    str(&pk, "SELECT :a");
    str(&pk, "params");
    msgpack_pack_map(&pk, 2);
    str(&pk, "mode");
    str(&pk, "named");
    str(&pk, "values");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2);
    str(&pk, "name");
    str(&pk, "a");
    str(&pk, "value");
    msgpack_pack_int(&pk, 7);
    ASSERT_EQ_INT(parse_sb(1, &sb, &q, msg), 0);
    ASSERT(q.bytes == q.small_bytes);
    ASSERT_EQ_INT(q.nstmts, 2);
    ASSERT_EQ_STR(q.stmts[1].rw.sql, "SELECT $1");
    ASSERT_EQ_MEM(q.stmts[1].names[0].name, q.stmts[1].names[0].len, "a", 1);
    ASSERT(q.stmts[1].values[0].i == 7);
    mw_query_free(&q);
    msgpack_sbuffer_destroy(&sb);
    mw_config_free(&cfg);
}

TEST(bad_payloads_are_refused)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *msg;
    } cases[] = {
#define CASE(bytes, msg) {bytes, sizeof bytes - 1, msg}
        /* {"sql": "SELECT 1"} cut short, then with a byte after it */
        CASE("\x81\xa3sql\xa8SELECT", "truncated"),
        CASE("\x81\xa3sql\xa8SELECT 1\xc0", "trailing"),
        CASE("\x92\x01\x02", "not a MsgPack map"),
        CASE("\x83\xa3sql\xa8SELECT 1\xa3tag\xa1" "a\xa3tag\xa1" "b", "tag appears twice"),
        CASE("\x81\xa3sql\x01", "sql is required"),
        /* a str that says it has 4 GB */
        CASE("\x81\xa3sql\xdb\xff\xff\xff\xff", "truncated"),
        /* a uint64 parameter above INT64_MAX; an ext parameter; a bad mode */
        CASE("\x82\xa3sql\xa2$1\xa6params\x82\xa4mode\xaapositional\xa6values\x91"
             "\xcf\x80\0\0\0\0\0\0\0", "out of the signed 64-bit range"),
        CASE("\x82\xa3sql\xa2$1\xa6params\x82\xa4mode\xaapositional\xa6values\x91"
             "\xd4\x01\x01", "unsupported value type"),
        CASE("\x82\xa3sql\xa2$1\xa6params\x82\xa4mode\xa3odd\xa6values\x90",
             "params.mode"),
#undef CASE
    };
    config_open(&cfg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mw_query q;
        char msg[MW_MSG_SIZE];
        ASSERT_EQ_INT(parse_bytes(0, cases[i].bytes, cases[i].len, &q, msg), -1);
        ASSERT_CONTAINS(msg, cases[i].msg);
        mw_query_free(&q);
    }
    mw_config_free(&cfg);
}

TEST(array_bytes_that_end_early)
{
    char *lit = NULL, err[MW_PG_ARRAY_ERR_SIZE];
    size_t len = 0;
    const char *type;
    /* [1, 2, 3] with only two elements there, and [[1], [...]] cut short */
    ASSERT_EQ_INT(mw_pg_array_literal((const uint8_t *)"\x93\x01\x02", 3, &lit, &len,
                                      &type, err), -1);
    ASSERT(lit == NULL);
    ASSERT_CONTAINS(err, "malformed");
    ASSERT_EQ_INT(mw_pg_array_literal((const uint8_t *)"\x92\x91\x01\x91", 4, &lit, &len,
                                      &type, err), -1);
    ASSERT(lit == NULL);
    ASSERT_EQ_INT(mw_pg_array_literal((const uint8_t *)"", 0, &lit, &len, &type, err), -1);
}

/* {"db_alias": alias (unless NULL), "channels": [names..., then extra
 * values (an int when extra > 0)]} */
static int listen_parse(const mw_config *c, const char *alias, const char *const *names,
                        size_t n, int extra, mw_listen_payload *l, char msg[MW_MSG_SIZE])
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, alias ? 2 : 1);
    if (alias) {
        str(&pk, "db_alias");
        str(&pk, alias);
    }
    str(&pk, "channels");
    msgpack_pack_array(&pk, n + (size_t)extra);
    for (size_t i = 0; i < n; i++)
        str(&pk, names[i]);
    for (int i = 0; i < extra; i++)
        msgpack_pack_int(&pk, i);
    int rc = mw_listen_parse((const uint8_t *)sb.data, sb.size, c, l, msg);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

TEST(listen_payloads)
{
    static char *argv[] = {"--stdio", "--db", "default=postgresql://u@h/d", "--db",
                           "lite=sqlite::memory:"};
    char err[MW_ERR_SIZE], msg[MW_MSG_SIZE];
    mw_config c;
    mw_config_init(&c);
    FILE *devnull = fopen("/dev/null", "w");
    ASSERT(devnull != NULL);
    ASSERT_EQ_INT(mw_config_parse_args(&c, 5, argv, devnull, err), 0);
    fclose(devnull);
    mw_listen_payload l;

    static const char *const ok[] = {"jobs", "Jobs \"x\""};
    ASSERT_EQ_INT(listen_parse(&c, NULL, ok, 2, 0, &l, msg), 0);
    ASSERT_EQ_INT((int)l.nchannels, 2);
    ASSERT_EQ_STR(l.channels[0], "jobs");
    ASSERT_EQ_STR(l.channels[1], "Jobs \"x\"");
    ASSERT_EQ_STR(l.alias->name, "default");
    mw_listen_payload_free(&l);

    static const char *const twice[] = {"a", "b", "a"};
    ASSERT_EQ_INT(listen_parse(&c, "default", twice, 3, 0, &l, msg), -1);
    ASSERT_CONTAINS(msg, "channels[2] is given twice");
    mw_listen_payload_free(&l);

    static const char *const prefix[] = {"ab", "a"}; /* a prefix is another name */
    ASSERT_EQ_INT(listen_parse(&c, NULL, prefix, 2, 0, &l, msg), 0);
    mw_listen_payload_free(&l);

    ASSERT_EQ_INT(listen_parse(&c, NULL, ok, 1, 1, &l, msg), -1);
    ASSERT_CONTAINS(msg, "channels[1] must be a str");
    mw_listen_payload_free(&l);

    static const char *const empty[] = {""};
    ASSERT_EQ_INT(listen_parse(&c, NULL, empty, 1, 0, &l, msg), -1);
    ASSERT_CONTAINS(msg, "channels[0]");
    mw_listen_payload_free(&l);

    ASSERT_EQ_INT(listen_parse(&c, NULL, ok, 0, 0, &l, msg), -1);
    ASSERT_CONTAINS(msg, "non-empty array");
    ASSERT_EQ_INT(listen_parse(&c, NULL, ok, 0, c.max_listen_channels + 1, &l, msg), -1);
    ASSERT_CONTAINS(msg, "max_listen_channels");
    ASSERT_EQ_INT(listen_parse(&c, "lite", ok, 1, 0, &l, msg), -1);
    ASSERT_CONTAINS(msg, "not supported on SQLite");
    ASSERT_EQ_INT(listen_parse(&c, "nope", ok, 1, 0, &l, msg), -1);
    ASSERT_CONTAINS(msg, "nope");

    /* {"channels": ["a"]} cut short, and with a byte after it */
    static const uint8_t cut[] = "\x81\xa8" "channels" "\x91\xa1" "a";
    ASSERT_EQ_INT(mw_listen_parse(cut, sizeof cut - 2, &c, &l, msg), -1);
    ASSERT_CONTAINS(msg, "payload");
    mw_listen_payload_free(&l);
    ASSERT_EQ_INT(mw_listen_parse(cut, sizeof cut, &c, &l, msg), -1);
    ASSERT_CONTAINS(msg, "trailing");
    mw_listen_payload_free(&l);
    mw_config_free(&c);
}

/* What a parsed query holds (mw_query_held_bytes, charged to
 * max_held_request_bytes): without parameters the payload copy is freed
 * once parsed and the rewrite alone is counted; with one it stays. */
TEST(held_bytes_without_and_with_parameters)
{
    config_open(&cfg);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char sql[4096];
    memset(sql, 'x', sizeof sql);
    memcpy(sql + sizeof sql - 3, "*/", 3);
    mw_query q;
    char msg[MW_MSG_SIZE];
    for (int params = 0; params < 2; params++) {
        memcpy(sql, params ? "SELECT $1 /*" : "SELECT 1  /*", 12);
        msgpack_pack_map(&pk, params ? 2 : 1);
        str(&pk, "sql");
        str(&pk, sql);
        if (params) {
            str(&pk, "params");
            msgpack_pack_map(&pk, 2);
            str(&pk, "mode");
            str(&pk, "positional");
            str(&pk, "values");
            msgpack_pack_array(&pk, 1);
            msgpack_pack_int(&pk, 5);
        }
        size_t n = sb.size;
        ASSERT_EQ_INT(parse_sb(0, &sb, &q, msg), 0);
        const mw_stmt *st = &q.stmts[0];
        size_t rw = st->rw.sql_len + 1 + st->rw.nslots * sizeof(size_t);
        if (params) {
            ASSERT(q.bytes != NULL && st->sql != NULL);
            ASSERT_EQ_INT(mw_query_held_bytes(&q),
                          n + rw + sizeof *st->values + sizeof *st->names);
        } else {
            ASSERT(q.bytes == NULL && st->sql == NULL);
            ASSERT_EQ_INT(mw_query_held_bytes(&q), rw);
        }
        ASSERT(st->rw.sql_len > 4000);
        mw_query_shed(&q);
        ASSERT(q.alias != NULL && q.stmts == NULL);
        ASSERT_EQ_INT(mw_query_held_bytes(&q), 0);
        mw_query_free(&q);
    }
    msgpack_sbuffer_destroy(&sb);
    mw_config_free(&cfg);
}

TEST_MAIN(TEST_ENTRY(every_parameter_type_read_in_place),
          TEST_ENTRY(held_bytes_without_and_with_parameters),
          TEST_ENTRY(bad_payloads_are_refused), TEST_ENTRY(array_bytes_that_end_early),
          TEST_ENTRY(listen_payloads))
