/* The privilege check of a PostgreSQL alias (see pg_role.h). */
#include "pg_role.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char check_sql[] =
    "select current_user::text, concat_ws(', ', "
    "case when rolsuper then 'superuser' end, "
    "case when rolreplication then 'replication' end, "
    "case when pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER') "
    "then 'pg_execute_server_program' end, "
    "case when pg_has_role(current_user, 'pg_write_server_files', 'MEMBER') "
    "then 'pg_write_server_files' end, "
    "case when pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') "
    "then 'pg_read_server_files' end) "
    "from pg_catalog.pg_roles where rolname = current_user";

typedef struct role_check {
    mw_pg_role_cb cb;
    void *ud;
    int rows;
    char role[MW_PG_ROLE_TEXT_SIZE];
    char privileges[MW_PG_ROLE_TEXT_SIZE];
} role_check;

static void copy_field(char *dst, const molt_db_field *f)
{
    size_t n = f->len > 0 ? (size_t)f->len : 0;
    if (n > MW_PG_ROLE_TEXT_SIZE - 1)
        n = MW_PG_ROLE_TEXT_SIZE - 1;
    if (n)
        memcpy(dst, f->data, n);
    dst[n] = 0;
}

static int on_row(void *ud, const molt_db_field *f, size_t n)
{
    role_check *c = ud;
    if (n != 2)
        return MOLT_DB_EPROTO;
    copy_field(c->role, &f[0]);
    copy_field(c->privileges, &f[1]);
    c->rows++;
    return MOLT_DB_OK;
}

static void on_done(void *ud, int status, const molt_db_error *err)
{
    role_check *c = ud;
    if (status == MOLT_DB_OK && c->rows != 1)
        status = MOLT_DB_EPROTO; /* the role is not in pg_roles?! */
    c->cb(c->ud, status, err, c->role, c->privileges);
    free(c);
}

int mw_pg_role_check(molt_db_pool *pool, int timeout_ms, mw_pg_role_cb cb, void *ud)
{
    role_check *c = calloc(1, sizeof *c);
    if (!c)
        return MOLT_DB_ENOMEM;
    c->cb = cb;
    c->ud = ud;
    molt_db_result_handler h = {NULL, on_row, NULL, on_done, c};
    molt_db_pool_query_options o = {0};
    o.timeout_ms = timeout_ms;
    o.read_only_tx = 1;
    int rc = molt_db_pool_query(pool, check_sql, 0, NULL, &h, &o, NULL);
    if (rc != MOLT_DB_OK)
        free(c);
    return rc;
}
