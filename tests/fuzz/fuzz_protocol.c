/*
 * libFuzzer target: the input is a byte stream "from the server". Frame it
 * message by message and run every body reader on every message (the one
 * that fits its type decodes it; the others must refuse it cleanly). Any
 * overread, leak or broken invariant is a crash.
 */
#include "molt_db/protocol.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond))                                                        \
            abort();                                                        \
    } while (0)

/* Touches every byte of a string the reader returned, so ASan sees an
 * overread if the string were not terminated inside the body. */
static size_t touch(const molt_db_msg *m, const char *s)
{
    size_t n = strlen(s);
    CHECK((const uint8_t *)s >= m->body &&
          (const uint8_t *)s + n < m->body + m->len);
    return n;
}

static void read_counted_bodies(const molt_db_msg *m)
{
    molt_db_error err;
    molt_db_error_init(&err);
    size_t count = 0, n = 0;
    if (molt_db_proto_read_count(m, &count, &err) != MOLT_DB_OK)
        return;
    CHECK(count <= 65535);

    /* A small stack array first: a large count gives ERANGE with the
     * needed size, then the exact allocation is retried. */
    molt_db_column cols_small[4];
    int rc = molt_db_proto_read_row_description(m, cols_small, 4, &n, &err);
    if (rc == MOLT_DB_ERANGE) {
        CHECK(n == count && n > 4);
        molt_db_column *cols = malloc(n * sizeof *cols);
        if (cols != NULL) {
            size_t cap = n;
            /* ERANGE comes before the columns are read, so the retry
             * may still find the body malformed. */
            rc = molt_db_proto_read_row_description(m, cols, cap, &n, &err);
            CHECK(rc == MOLT_DB_OK ? n == cap : rc == MOLT_DB_EPROTO);
            for (size_t i = 0; i < n; i++)
                touch(m, cols[i].name);
            free(cols);
        }
    } else if (rc == MOLT_DB_OK) {
        CHECK(n == count);
        for (size_t i = 0; i < n; i++) {
            touch(m, cols_small[i].name);
            CHECK(cols_small[i].format == 0 || cols_small[i].format == 1);
        }
    }

    molt_db_field fields_small[4];
    rc = molt_db_proto_read_data_row(m, fields_small, 4, &n, &err);
    molt_db_field *fields = fields_small;
    if (rc == MOLT_DB_ERANGE) {
        CHECK(n == count && n > 4);
        fields = malloc(n * sizeof *fields);
        if (fields == NULL)
            return;
        size_t cap = n;
        rc = molt_db_proto_read_data_row(m, fields, cap, &n, &err);
        CHECK(rc == MOLT_DB_OK ? n == cap : rc == MOLT_DB_EPROTO);
    }
    if (rc == MOLT_DB_OK) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < n; i++) {
            if (fields[i].len == -1) {
                CHECK(fields[i].data == NULL);
                continue;
            }
            CHECK(fields[i].len >= 0);
            CHECK(fields[i].data >= m->body &&
                  fields[i].data + fields[i].len <= m->body + m->len);
            if (fields[i].len > 0)
                sink ^= fields[i].data[fields[i].len - 1];
        }
        (void)sink;
    }
    if (fields != fields_small)
        free(fields);

    uint32_t oids_small[4];
    rc = molt_db_proto_read_parameter_description(m, oids_small, 4, &n, &err);
    if (rc == MOLT_DB_ERANGE) {
        CHECK(n == count && n > 4);
        uint32_t *oids = malloc(n * sizeof *oids);
        if (oids != NULL) {
            size_t cap = n;
            rc = molt_db_proto_read_parameter_description(m, oids, cap, &n,
                                                          &err);
            CHECK(rc == MOLT_DB_OK && n == cap);
            free(oids);
        }
    }
}

static void read_all(const molt_db_msg *m)
{
    molt_db_error err;
    molt_db_error_init(&err);

    molt_db_auth_msg auth;
    if (molt_db_proto_read_auth(m, &auth, &err) == MOLT_DB_OK) {
        CHECK(m->type == 'R');
        if (auth.code == MOLT_DB_AUTH_SASL) {
            size_t pos = 0;
            const char *name;
            int rc;
            while ((rc = molt_db_proto_next_sasl_mechanism(&auth, &pos,
                                                           &name)) == 1)
                touch(m, name);
            /* read_auth validated the list, so the walk ends cleanly. */
            CHECK(rc == 0);
        }
    }

    const char *s1, *s2;
    if (molt_db_proto_read_parameter_status(m, &s1, &s2, &err) ==
        MOLT_DB_OK) {
        touch(m, s1);
        touch(m, s2);
    }

    int32_t i1, i2;
    (void)molt_db_proto_read_backend_key(m, &i1, &i2, &err);

    char status;
    if (molt_db_proto_read_ready(m, &status, &err) == MOLT_DB_OK)
        CHECK(status == 'I' || status == 'T' || status == 'E');

    molt_db_error srv;
    molt_db_error_init(&srv);
    if (molt_db_proto_read_error(m, &srv, &err) == MOLT_DB_OK) {
        CHECK(srv.code == MOLT_DB_ESERVER);
        CHECK(strlen(srv.message) < sizeof srv.message);
        CHECK(srv.sqlstate[0] == '\0' || strlen(srv.sqlstate) == 5);
        CHECK(srv.position >= 0);
    }
    molt_db_error_clear(&srv);

    read_counted_bodies(m);

    const char *tag;
    if (molt_db_proto_read_command_complete(m, &tag, &err) == MOLT_DB_OK) {
        touch(m, tag);
        uint64_t rows;
        (void)molt_db_proto_tag_rows(tag, &rows);
    }

    if (molt_db_proto_read_notification(m, &i1, &s1, &s2, &err) ==
        MOLT_DB_OK) {
        touch(m, s1);
        touch(m, s2);
    }

    int format;
    size_t ncols;
    if (molt_db_proto_read_copy_response(m, &format, &ncols, &err) ==
        MOLT_DB_OK) {
        for (size_t i = 0; i < ncols; i++) {
            int f = molt_db_proto_copy_column_format(m, i);
            CHECK(f == 0 || f == format);
        }
        CHECK(molt_db_proto_copy_column_format(m, ncols) == MOLT_DB_EINVAL);
    }

    if (molt_db_proto_read_negotiate_version(m, &i1, &i2, &err) ==
        MOLT_DB_OK)
        CHECK(i1 >= 0 && i2 >= 0);

    molt_db_error_clear(&err);
}

/* Re-encoding a body as CopyData and framing it again gives it back. */
static void round_trip(const molt_db_msg *m)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    if (molt_db_proto_write_copy_data(&b, m->body, m->len) == MOLT_DB_OK) {
        molt_db_msg again;
        size_t consumed = 0;
        CHECK(molt_db_proto_next(b.data, b.len, &again, &consumed, NULL,
                                 NULL) == MOLT_DB_OK);
        CHECK(consumed == b.len && again.type == 'd' && again.len == m->len);
        CHECK(memcmp(again.body, m->body, m->len) == 0);
    }
    molt_db_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off < size) {
        molt_db_msg m;
        size_t consumed = 99, need = 0;
        molt_db_error err;
        molt_db_error_init(&err);
        int rc = molt_db_proto_next(data + off, size - off, &m, &consumed,
                                    &need, &err);
        if (rc == MOLT_DB_NEED_MORE) {
            CHECK(consumed == 0 && need > size - off);
            break;
        }
        if (rc != MOLT_DB_OK) {
            CHECK(rc == MOLT_DB_EPROTO && err.code == MOLT_DB_EPROTO);
            break;
        }
        CHECK(consumed == (size_t)m.len + 5 && consumed <= size - off);
        CHECK(need == consumed);
        read_all(&m);
        round_trip(&m);
        off += consumed;
    }
    return 0;
}
