/*
 * What a PostgreSQL SQL text does, decided from its bytes alone (no I/O, no
 * allocation): a lexer that knows PostgreSQL's comments (`--`, nested
 * `/ * * /`), quoted identifiers, string literals ('', E'', U&'', B'', X''),
 * dollar quotes ($tag$...$tag$) and `;` separators, and a look at the
 * keywords and identifiers of each statement.
 *
 * db_query runs only SQL that classifies as one statement that reads
 * (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN without ANALYZE, none of them
 * writing through a CTE, SELECT INTO or a locking clause), before the server
 * sees it; the server's own BEGIN READ ONLY frame stays behind it.
 *
 * session_state marks SQL that can leave state on the connection that
 * outlives ROLLBACK (session advisory locks, dblink connections, SET,
 * LISTEN, PREPARE, temporary tables, SQL run from text by query_to_xml or
 * ts_stat...): the worker closes such a connection after the request
 * instead of handing it to the next one. tx_control marks SQL that would
 * end or split the transaction the worker runs it in: refused in db_exec
 * too (only the tx_* entries control transactions). Spelling cannot see into a
 * user-defined function that runs dynamic SQL; a least-privilege role is
 * the fence for that.
 */
#ifndef MW_SQL_CLASSIFY_H
#define MW_SQL_CLASSIFY_H

#include <stddef.h>

typedef enum mw_sql_verdict {
    MW_SQL_READ = 0,    /* one or more statements, all of which read */
    MW_SQL_OTHER,       /* something else: a write, DDL, a session command;
                           reason says what a db_query would refuse */
    MW_SQL_EMPTY        /* no statement: blanks, `;`, comments */
} mw_sql_verdict;

#define MW_SQL_REASON_SIZE 200

typedef struct mw_sql_class {
    mw_sql_verdict verdict;
    size_t nstatements;         /* non-empty statements */
    int session_state;          /* may leave state past ROLLBACK */
    int tx_control;             /* BEGIN, START, COMMIT, END, ROLLBACK, ABORT,
                                   SAVEPOINT, RELEASE or PREPARE TRANSACTION */
    char reason[MW_SQL_REASON_SIZE]; /* for MW_SQL_OTHER */
    char sqlstate[6];           /* for MW_SQL_OTHER: 25006, or 42601 when the
                                   first word starts no PostgreSQL statement */
} mw_sql_class;

/* Classifies sql[0..len) (need not be NUL-terminated; NUL bytes are
 * ordinary characters). Backslashes in plain '' strings mean different
 * things under standard_conforming_strings on and off: when the two
 * readings disagree the SQL is MW_SQL_OTHER ("ambiguous"). */
void mw_sql_classify(const char *sql, size_t len, mw_sql_class *out);

#endif
