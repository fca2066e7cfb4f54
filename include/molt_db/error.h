/*
 * molt_db error model.
 *
 * Every fallible function returns an int: MOLT_DB_OK (0) on success, a
 * negative molt_db_code on failure, and, where documented, a positive
 * non-error status (MOLT_DB_NEED_MORE). Functions that take a
 * `molt_db_error *err` fill it on failure when err is not NULL; passing NULL
 * is always allowed.
 *
 * Ownership: a molt_db_error owns the server-field strings it holds. Call
 * molt_db_error_clear() to free them before reuse or disposal. A zeroed
 * struct (or molt_db_error_init) is a valid empty error.
 *
 * Thread-safety: none needed; an error struct belongs to one caller.
 */
#ifndef MOLT_DB_ERROR_H
#define MOLT_DB_ERROR_H

#include "molt_db/export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum molt_db_code {
    MOLT_DB_OK = 0,
    MOLT_DB_NEED_MORE = 1,   /* not an error: a parser needs more bytes */

    MOLT_DB_ENOMEM = -1,     /* an allocation failed */
    MOLT_DB_EINVAL = -2,     /* bad argument or bad input from the caller */
    MOLT_DB_EPROTO = -3,     /* the peer broke the protocol: lost sync */
    MOLT_DB_EIO = -4,        /* socket read/write failed; connection lost */
    MOLT_DB_ECONNECT = -5,   /* could not connect to any host */
    MOLT_DB_EAUTH = -6,      /* authentication failed or is unsupported */
    MOLT_DB_ETLS = -7,       /* TLS negotiation or verification failed */
    MOLT_DB_ESERVER = -8,    /* the server sent an ErrorResponse; see sqlstate */
    MOLT_DB_ETIMEDOUT = -9,  /* a deadline passed */
    MOLT_DB_ECANCELED = -10, /* the caller cancelled the operation */
    MOLT_DB_ECLOSED = -11,   /* the connection is closed or closing */
    MOLT_DB_EBUSY = -12,     /* no capacity (pool exhausted, queue full) */
    MOLT_DB_ETYPE = -13,     /* a value has a type the operation cannot take */
    MOLT_DB_ERANGE = -14,    /* a value does not fit its destination */
    MOLT_DB_ECONFIG = -15,   /* bad connection string, option or setting */
    MOLT_DB_ESTATE = -16,    /* call not allowed in the object's current state */
    MOLT_DB_ESKIPPED = -17   /* a batched request did not run: an earlier one
                                of its batch failed; safe to send again */
} molt_db_code;

/* Size of the fixed message buffer; longer messages are truncated. */
#define MOLT_DB_ERROR_MESSAGE_SIZE 1024

typedef struct molt_db_error {
    int code;                                  /* a molt_db_code */
    char sqlstate[6];                          /* "" unless from the server */
    char message[MOLT_DB_ERROR_MESSAGE_SIZE];  /* always NUL-terminated */
    /* Fields of a server ErrorResponse/NoticeResponse, NULL when absent.
     * Owned by the struct; freed by molt_db_error_clear(). */
    char *severity;    /* non-localized severity (V), e.g. "ERROR" */
    char *detail;      /* D */
    char *hint;        /* H */
    char *where;       /* W */
    char *schema;      /* s */
    char *table;       /* t */
    char *column;      /* c */
    char *datatype;    /* d */
    char *constraint;  /* n */
    int position;      /* P, 1-based character offset into the query; 0 if absent */
} molt_db_error;

/* Makes *err an empty error (code MOLT_DB_OK). Does not free anything. */
MOLT_DB_API
void molt_db_error_init(molt_db_error *err);

/* Frees the server fields and resets *err to empty. err may be NULL. */
MOLT_DB_API
void molt_db_error_clear(molt_db_error *err);

/* Clears *err, then sets code and a printf-style message. Returns code, so a
 * caller can write `return molt_db_error_set(err, MOLT_DB_EINVAL, "...")`.
 * err may be NULL (then only code is returned). */
MOLT_DB_API
int molt_db_error_set(molt_db_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Moves src into *dst (clearing dst first); src becomes empty. */
MOLT_DB_API
void molt_db_error_move(molt_db_error *dst, molt_db_error *src);

/* Deep-copies src into *dst (clearing dst first). Returns MOLT_DB_OK, or
 * MOLT_DB_ENOMEM when a field could not be copied (the message and code are
 * still copied). */
MOLT_DB_API
int molt_db_error_copy(molt_db_error *dst, const molt_db_error *src);

/* The symbolic name of a code ("MOLT_DB_EPROTO"); never NULL. */
MOLT_DB_API
const char *molt_db_code_name(int code);

#ifdef __cplusplus
}
#endif
#endif
