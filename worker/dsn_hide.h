/*
 * Hides the password of a PostgreSQL DSN given on the command line: the
 * worker overwrites it in its own argv once the DSN is copied, so `ps` and
 * /proc/PID/cmdline stop showing it (they did until then: a password
 * belongs in a --config file of mode 0600, ~/.pgpass or PGPASSWORD).
 */
#ifndef MW_DSN_HIDE_H
#define MW_DSN_HIDE_H

#include <stddef.h>

/* Overwrites with '*' every password in dsn (NUL-terminated): a URI's
 * user:PASSWORD@ and ?password=, a key=value string's password=...
 * Returns how many bytes it overwrote (0: no password). */
size_t mw_dsn_hide_password(char *dsn);

#endif
