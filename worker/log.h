/* The worker's log lines on stderr (log.c), as JSON or text. */
#ifndef MW_LOG_H
#define MW_LOG_H

#include "envelope.h"
#include "molt_db/error.h"

typedef struct mw_request mw_request;

/* "json" (also NULL) or "text" */
void mw_log_set_format(const char *format);
/* err: the database error of a DbError answer (its SQLSTATE is logged), or NULL */
void mw_log_request(mw_request *r, mw_status st, const molt_db_error *err);
void mw_log(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
