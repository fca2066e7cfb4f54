/* libFuzzer target: the worker's PostgreSQL statement classifier on any
 * bytes. Besides not crashing: blanks or a comment in front change nothing,
 * a trailing `;` adds no statement, and the input quoted as a string, a
 * block comment or a dollar quote is one statement that reads (a `;` in
 * there never splits). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/sql_classify.h"

static void same(const mw_sql_class *a, const mw_sql_class *b)
{
    if (a->verdict != b->verdict || a->nstatements != b->nstatements ||
        a->session_state != b->session_state)
        __builtin_trap();
}

static void classify_with(const char *before, const uint8_t *d, size_t n,
                          const char *after, mw_sql_class *out)
{
    size_t lb = strlen(before), la = strlen(after);
    char *s = malloc(lb + n + la + 1);
    if (!s)
        return;
    memcpy(s, before, lb);
    if (n)
        memcpy(s + lb, d, n);
    memcpy(s + lb + n, after, la);
    mw_sql_classify(s, lb + n + la, out);
    free(s);
}

/* The input without the bytes that could end the quoting q opens. */
static size_t keep(const uint8_t *d, size_t n, uint8_t *out, const char *drop)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr(drop, d[i]) || d[i] == 0)
            out[k++] = d[i];
    return k;
}

static void one_read(const mw_sql_class *c)
{
    if (c->verdict != MW_SQL_READ || c->nstatements != 1)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_sql_class base, other;
    mw_sql_classify((const char *)data, size, &base);
    if (base.verdict == MW_SQL_EMPTY && base.nstatements != 0)
        __builtin_trap();

    classify_with("  \n", data, size, "", &other);
    same(&base, &other);
    classify_with("/* lead; */ ", data, size, "", &other);
    same(&base, &other);
    classify_with("-- lead;\n", data, size, "", &other);
    same(&base, &other);
    classify_with("", data, size, ";", &other);
    if (other.nstatements != base.nstatements)
        __builtin_trap();

    uint8_t *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    /* '...' with no quote or backslash inside */
    size_t n = keep(data, size, body, "'\\");
    classify_with("select '", body, n, "'", &other);
    one_read(&other);
    /* a block comment with no * or / inside */
    n = keep(data, size, body, "*/");
    classify_with("select 1 /* ", body, n, " */", &other);
    one_read(&other);
    /* a dollar quote with no $ inside */
    n = keep(data, size, body, "$");
    classify_with("select $q$", body, n, "$q$", &other);
    one_read(&other);
    free(body);
    return 0;
}
