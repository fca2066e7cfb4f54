/*
 * The entries' payloads: db_query and db_exec (contract sections 5 and 6),
 * tx_*, cancel and listen; copy_in's is copy.h's. The db_query and db_exec
 * payload bytes are checked (msgpack_check.h) and read in place
 * (mpread.h), without unpacking them into msgpack-c objects; every key is
 * validated and the SQL is rewritten for the alias's backend (params.h).
 * Every failure is InvalidInput with a message. On PostgreSQL the
 * rewritten SQL is classified (sql_classify.h): no statement at all is
 * InvalidInput, and a db_query that is not one statement that reads is
 * marked refused. The rewrite and the class of the SQL texts an alias ran
 * lately are kept in its memo (sql_memo.h) and not computed again.
 *
 * Ownership: a mw_query points into its copy of the payload (`bytes`,
 * which it owns together with the rewritten SQL; the copy is freed once
 * parsed when no parameter value points into it); mw_query_free releases
 * all.
 */
#ifndef MW_PAYLOAD_H
#define MW_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "config.h"
#include "encode.h"
#include "envelope.h"
#include "mpread.h"
#include "params.h"
#include "sql_classify.h"

typedef enum mw_vtype {
    MW_V_NIL = 0, MW_V_BOOL, MW_V_INT, MW_V_FLOAT, MW_V_STR, MW_V_BIN
} mw_vtype;

typedef struct mw_value {
    mw_vtype t;
    int64_t i;            /* BOOL, INT */
    double f;
    const char *p;        /* STR, BIN: into the payload, or owned */
    char *owned;          /* an array's literal (pg_array.h), or NULL */
    size_t n;
    const char *type;     /* declared type name or NULL: into the payload */
    size_t type_len;
} mw_value;

typedef struct mw_stmt {
    const char *sql;      /* as given, into the payload (not NUL-terminated);
                             read while parsing only (NULL after, when the
                             payload copy was dropped) */
    size_t sql_len;
    mw_param_mode mode;
    size_t nvalues;
    mw_value *values;
    mw_param_name *names; /* in the allocation of values, after them */
    mw_rewrite rw;        /* SQL for the backend; rw.slot_value maps slots */
    struct mw_sql_shared *rw_shared; /* rw is borrowed from the alias's SQL
                             memo (sql_memo.h) under this reference; NULL:
                             rw is the statement's own */
    int session_state;    /* PostgreSQL: may leave state past ROLLBACK
                             (sql_classify.h): its connection is closed after */
    int tx_control;       /* PostgreSQL: controls the transaction: refused */
} mw_stmt;

typedef enum mw_isolation {
    MW_ISO_READ_COMMITTED = 0, MW_ISO_REPEATABLE_READ, MW_ISO_SERIALIZABLE
} mw_isolation;

/* A payload up to this size is copied into the query itself, not into an
 * allocation of its own (a point query's is about 110 bytes). */
#define MW_QUERY_SMALL_BYTES 192

typedef struct mw_query {
    uint8_t *bytes;       /* the payload copy the values point into: small_bytes
                             or malloc'd; NULL once parsed when no statement
                             has values */
    size_t nbytes;
    mw_alias *alias;
    int write;            /* db_exec */
    mw_stmt *stmts;
    size_t nstmts;
    int statements;       /* a statements list was given */
    uint64_t max_rows;
    mw_format format;
    int objects;
    int stream;
    size_t batch_rows;
    char tag[65];
    mw_isolation isolation;
    int pin_primary;      /* an alias with replicas: run on the primary */
    int in_tx;            /* tx_id was given: run in that transaction (tx.h) */
    uint64_t tx_id;
    /* PostgreSQL db_query the classifier refused (sql_classify.h): answered
     * DbError with this SQLSTATE and message, the server never sees it */
    char refused_sqlstate[6];
    char refused[MW_SQL_REASON_SIZE];
    struct mw_copy *copy; /* copy_in (copy.h): its COPY and data, else NULL */
    int copy_out;         /* copy_out: the statement runs through COPY TO */
    mw_stmt one_stmt;     /* stmts when there is one sql, not a statements list */
    uint8_t small_bytes[MW_QUERY_SMALL_BYTES];
} mw_query;

/* Parses the payload of a db_query (write 0) or db_exec (write 1). Copies
 * the bytes. Returns 0, -1 (InvalidInput, msg) or -2 (out of memory); in
 * every case the caller releases q with mw_query_free. */
int mw_query_parse(mw_query *q, int write, const mw_config *cfg,
                   const uint8_t *p, size_t n, char msg[MW_MSG_SIZE]);

void mw_query_free(mw_query *q);

/* The heap bytes a parsed q holds until mw_query_free (its payload copy,
 * statements, values, rewritten SQL not shared with the memo, copy_in's
 * COPY and rows): what request.c charges to max_held_request_bytes. */
size_t mw_query_held_bytes(const mw_query *q);

/* Frees what q holds but its alias, format and tag (a request's metrics
 * and log name them). */
void mw_query_shed(mw_query *q);

/* A payload's top-level keys that every entry reads (db_alias,
 * allow_write), indexed by the walk that checks the payload. */
typedef struct mw_payload_keys {
    mw_mpkeys k;
    size_t zone_bytes;    /* what mw_payload_unpack's objects take */
} mw_payload_keys;

/* Checks a payload (as a frame body) without unpacking it: a map, its keys
 * indexed into keys by the same walk, so an entry can judge alias and
 * capability (mw_payload_alias, mw_payload_write_grant, mw_payload_has)
 * before it spends memory on the objects. Allocates nothing. 0 or -1 with
 * msg. */
int mw_payload_check(const uint8_t *p, size_t n, mw_payload_keys *keys,
                     char msg[MW_MSG_SIZE]);
/* Unpacks a payload that mw_payload_check passed with these keys. 0, -1
 * with msg, or -2 (out of memory); on 0 the caller destroys up. */
int mw_payload_unpack(const uint8_t *p, size_t n, const mw_payload_keys *keys,
                      msgpack_unpacked *up, char msg[MW_MSG_SIZE]);
/* 1 when the checked payload has key name (one of the payload keys the
 * worker knows, e.g. "tx_id"), else 0. */
int mw_payload_has(const mw_payload_keys *keys, const char *name);

/* The db_alias of an unpacked payload ("default" when absent). 0 or -1
 * with msg. */
int mw_payload_alias(const mw_config *cfg, const mw_payload_keys *keys,
                     mw_alias **alias, char msg[MW_MSG_SIZE]);
/* A write entry's grant: allow_write: true in an unpacked payload and
 * db.write on the alias. 0 or -1 with msg. */
int mw_payload_write_grant(const mw_payload_keys *keys, const char *entry,
                           const mw_alias *alias, char msg[MW_MSG_SIZE]);

/* A tx_begin, tx_commit or tx_rollback payload (contract section 11). */
typedef struct mw_tx_payload {
    int nested;           /* tx_id was given */
    uint64_t tx_id;
    mw_alias *alias;      /* tx_begin, not nested */
    mw_isolation isolation;
    int read_only;
    int deferrable;
} mw_tx_payload;

/* Parses one (begin: a tx_begin's). 0, -1 (InvalidInput, msg) or -2. */
int mw_tx_payload_parse(const uint8_t *p, size_t n, int begin, const mw_config *cfg,
                        mw_tx_payload *t, char msg[MW_MSG_SIZE]);

/* The request_id of a cancel payload. 0 or -1 with msg. */
int mw_cancel_parse(const uint8_t *p, size_t n, uint64_t *target,
                    char msg[MW_MSG_SIZE]);

/* A listen payload (contract section 12): a PostgreSQL alias and the
 * channels to listen on, each an identifier (pg_ident.h), none twice, at
 * most max_listen_channels of them. */
typedef struct mw_listen_payload {
    mw_alias *alias;
    char **channels;      /* NUL-terminated copies, owned */
    size_t nchannels;
} mw_listen_payload;

/* Parses one into l. 0, -1 (InvalidInput, msg) or -2 (out of memory,
 * msg); in every case the caller releases l with mw_listen_payload_free
 * (or takes its channels). */
int mw_listen_parse(const uint8_t *p, size_t n, const mw_config *cfg,
                    mw_listen_payload *l, char msg[MW_MSG_SIZE]);
void mw_listen_payload_free(mw_listen_payload *l);

#endif
