/* Client-given PostgreSQL identifiers (see pg_ident.h). */
#include "pg_ident.h"

#include <string.h>

int mw_pg_ident_check(const char *name, size_t len, const char **why)
{
    if (len == 0) {
        *why = "is empty";
        return -1;
    }
    if (len > MW_PG_IDENT_MAX) {
        *why = "is longer than 63 bytes (the server would cut it short)";
        return -1;
    }
    if (memchr(name, 0, len)) {
        *why = "holds a NUL byte";
        return -1;
    }
    return 0;
}

void mw_pg_ident_quote(molt_db_buf *out, const char *name, size_t len)
{
    molt_db_buf_put_u8(out, '"');
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '"')
            molt_db_buf_put_u8(out, '"');
        molt_db_buf_put_u8(out, (uint8_t)name[i]);
    }
    molt_db_buf_put_u8(out, '"');
}
