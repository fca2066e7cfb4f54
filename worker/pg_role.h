/*
 * The privilege check of a PostgreSQL alias: is the DSN's role a superuser,
 * or can it run programs on the server (pg_execute_server_program), read or
 * write the server's files (pg_read_server_files, pg_write_server_files) or
 * replicate? Such a role turns any client's request into a shell on the
 * database host, so the worker refuses to serve it unless the alias sets
 * allow_privileged_role (backend_pg.c runs this once per alias, before the
 * alias's first request).
 */
#ifndef MW_PG_ROLE_H
#define MW_PG_ROLE_H

#include "molt_db/pool.h"

#define MW_PG_ROLE_TEXT_SIZE 200

/* status: MOLT_DB_OK and role/privileges (privileges "" when none of the
 * above), else the pool's failure (err may be NULL). */
typedef void (*mw_pg_role_cb)(void *ud, int status, const molt_db_error *err,
                              const char *role, const char *privileges);

/* Runs the check query on pool; cb is called once unless this returns an
 * error code. */
int mw_pg_role_check(molt_db_pool *pool, int timeout_ms, mw_pg_role_cb cb, void *ud);

#endif
