/*
 * Placeholders in SQL text (contract section 5): `$n` (positional) and
 * `:name` (named, [A-Za-z_][A-Za-z0-9_]*), found by a lexer that knows
 * string literals ('...', E'...' with backslash escapes), quoted identifiers
 * ("..."; on SQLite also `...` and [...]), comments (-- and nested block comments),
 * dollar-quoted strings ($$...$$, $tag$...$tag$; PostgreSQL) and :: casts.
 *
 * mw_params_rewrite turns the SQL into what the backend binds natively:
 * PostgreSQL `$k`, SQLite `?k` (a bare `?` where slot k first appears, the
 * number SQLite gives it), one slot per distinct placeholder, and
 * checks that every placeholder has a value and every value is used.
 *
 * Pure functions, no I/O, no global state; reentrant.
 */
#ifndef MW_PARAMS_H
#define MW_PARAMS_H

#include <stddef.h>
#include <stdint.h>

typedef enum mw_dialect { MW_DIALECT_PG = 0, MW_DIALECT_SQLITE } mw_dialect;

typedef enum mw_param_mode {
    MW_PARAMS_NONE = 0,   /* no params given: any placeholder is missing */
    MW_PARAMS_POSITIONAL,
    MW_PARAMS_NAMED
} mw_param_mode;

typedef struct mw_placeholder {
    size_t start, len;    /* the placeholder's bytes in the SQL */
    char kind;            /* '$' positional, ':' named, '?' (SQLite ?, @x) */
    uint32_t number;      /* $n: n (0 when it does not fit) */
    const char *name;     /* :name: the name (no colon), into the SQL */
    size_t name_len;
} mw_placeholder;

/* Calls cb for every placeholder in order; stops and returns cb's value when
 * it is not 0. Returns 0 after the last. Never reads past len. */
int mw_params_scan(const char *sql, size_t len, mw_dialect d,
                   int (*cb)(void *ud, const mw_placeholder *ph), void *ud);

/* A named value's name, for matching. */
typedef struct mw_param_name {
    const char *name;
    size_t len;
} mw_param_name;

typedef struct mw_rewrite {
    char *sql;            /* NUL-terminated, malloc'd: free with mw_rewrite_free */
    size_t sql_len;
    size_t nslots;        /* bind slots 1..nslots */
    size_t *slot_value;   /* slot k (0-based) takes value slot_value[k] */
} mw_rewrite;

#define MW_PARAMS_ERR_SIZE 256

/* The most values one statement takes: PostgreSQL's Bind counts them in 16
 * bits; SQLite's documented SQLITE_MAX_VARIABLE_NUMBER default (Debian's
 * build allows 250000; a rewrite binds at most one slot a value, so this
 * bounds the connection whatever its build). A request's parser refuses
 * more before it allocates anything per value. */
#define MW_PARAMS_MAX_PG 65535
#define MW_PARAMS_MAX_SQLITE 32766

/* MW_PARAMS_MAX_PG or MW_PARAMS_MAX_SQLITE. */
size_t mw_params_max(mw_dialect d);

/*
 * Rewrites sql for dialect d. mode POSITIONAL: nvalues values for $1..$n;
 * NAMED: names[0..nvalues) (distinct; order free; n log n in nvalues plus
 * log nvalues a placeholder). Returns 0 and *out, or -1 with err
 * (InvalidInput: a missing value or unused value naming the placeholder, a
 * name given twice, a placeholder of the other mode, $0 or a huge $n, a NUL
 * byte, a SQLite `?`/`@x` placeholder) or -2 when memory ran out.
 */
int mw_params_rewrite(const char *sql, size_t len, mw_dialect d,
                      mw_param_mode mode, size_t nvalues,
                      const mw_param_name *names, mw_rewrite *out,
                      char err[MW_PARAMS_ERR_SIZE]);

void mw_rewrite_free(mw_rewrite *r);

#endif
