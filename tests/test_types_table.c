/* The type table is whole: every scalar of the catalog has a line, and
 * every line has what each format needs (binary decode and encode, text
 * parse and output, an Arrow column that COPY writes back, struct members
 * only of classes they can hold). A type added to the catalog or the table
 * and not to every format fails here, naming the type and what it lacks. */
#include "molt_db/rowstruct.h"
#include "molt_db/value.h"
#include "arrow_kind.h"
#include "types_internal.h"
#include "test.h"

#include <stddef.h>

static const char *name_of(uint32_t oid)
{
    const char *n = molt_db_type_name(oid);
    return n ? n : "(not in the catalog)";
}

#define LACKS(t, what) FAIL_AT("type %s: %s", name_of((t)->oid), what)

/* The struct members a value class can fill (string members: any). */
static unsigned members_of_class(int cls)
{
#define M(t) (1u << MOLT_DB_MEMBER_##t)
    switch (cls) {
    case MOLT_DB_VALUE_BOOL: return M(BOOL);
    case MOLT_DB_VALUE_INT: return M(INT16) | M(INT32) | M(INT64);
    case MOLT_DB_VALUE_FLOAT4: return M(FLOAT) | M(DOUBLE);
    case MOLT_DB_VALUE_FLOAT8: return M(DOUBLE);
    case MOLT_DB_VALUE_NUMERIC: return M(DECIMAL128);
    case MOLT_DB_VALUE_BYTES: return M(BYTES_VIEW) | M(BYTES_COPY);
    case MOLT_DB_VALUE_UUID: return M(UUID);
    case MOLT_DB_VALUE_DATE: return M(DATE_DAYS);
    case MOLT_DB_VALUE_TIMESTAMP:
    case MOLT_DB_VALUE_TIMESTAMPTZ: return M(TIMESTAMP_US);
    default: return 0;
    }
#undef M
}

/* A zero value of t's class has a text form (molt_db_value_text knows the
 * class: a class it does not know prints the bytes view, empty here, while
 * every other class prints at least one character). */
static void check_text_output(const molt_db__scalar *t)
{
    molt_db_value v;
    memset(&v, 0, sizeof v);
    v.cls = t->cls;
    molt_db_buf out = {0};
    ASSERT_OK(molt_db_value_text(&v, &out), NULL);
    int bytes_view = t->cls == MOLT_DB_VALUE_TEXT || t->cls == MOLT_DB_VALUE_JSON ||
                     t->cls == MOLT_DB_VALUE_CHAR;
    if (!bytes_view && out.len == 0)
        LACKS(t, "a text output for its class (molt_db_value_text)");
    molt_db_buf_free(&out);
}

static void check_arrow(const molt_db__scalar *t)
{
    if (t->arrow < MOLT_DB__AK_BOOL || t->arrow > MOLT_DB__AK_STRUCT ||
        t->arrow == MOLT_DB__AK_LIST)
        LACKS(t, "an Arrow column of a scalar kind");
    if (t->arrow == MOLT_DB__AK_STRUCT) {
        if (t->parts == NULL || t->nparts == 0)
            LACKS(t, "the parts of its Arrow Struct");
        for (size_t k = 0; k < t->nparts; k++) {
            int w = molt_db__ak_width(t->parts[k].kind);
            if (w == 0 || t->parts[k].name == NULL ||
                t->parts[k].offset + (size_t)w > sizeof ((molt_db_value *)0)->u)
                LACKS(t, "a fixed-width Arrow kind and a place in the value for each part");
        }
    }
    if (!molt_db_type_binary_supported(t->oid))
        return; /* read as the server's text; COPY from Arrow may refuse it */
    /* what the Arrow builder makes of a binary field, COPY writes back */
    if (!((t->copy_from >> t->arrow) & 1))
        LACKS(t, "COPY from its own Arrow column (copy_from)");
    if (t->arrow == MOLT_DB__AK_DEC128 && !(t->copy_from & MOLT_DB__AK_BIT(UTF8)))
        LACKS(t, "COPY from Utf8, its Arrow column when the typmod fits no Decimal128");
}

TEST(every_catalog_scalar_has_a_line)
{
    size_t bases = 0;
    for (size_t i = 0; molt_db__type_at(i) != NULL; i++) {
        const molt_db_type_info *ti = molt_db__type_at(i);
        if (ti->kind != MOLT_DB_KIND_BASE)
            continue;
        bases++;
        if (molt_db__scalar_of(ti->oid) == NULL)
            FAIL_AT("type %s: in the catalog, not in the type table", ti->name);
    }
    ASSERT(bases >= 24);
}

TEST(every_line_is_whole)
{
    size_t n = 0;
    uint32_t last = 0;
    for (const molt_db__scalar *t; (t = molt_db__scalar_at(n)) != NULL; n++) {
        if (n > 0 && t->oid <= last)
            LACKS(t, "its place in oid order (the lookup is a binary search)");
        last = t->oid;
        const molt_db_type_info *ti = molt_db_type_lookup(t->oid);
        if (ti == NULL || ti->kind != MOLT_DB_KIND_BASE)
            LACKS(t, "a base type line in the catalog (types_catalog.c)");
        if (t->cls < MOLT_DB_VALUE_BOOL || t->cls > MOLT_DB_VALUE_INTERVAL)
            LACKS(t, "a value class");
        if (t->decode == NULL || t->parse == NULL || t->encode == NULL)
            LACKS(t, "a binary decoder, a text parser and a binary encoder");
        ASSERT_EQ_INT(molt_db_value_class_of(t->oid), (int)t->cls);
        if (t->raw_text && t->cls != MOLT_DB_VALUE_TEXT && t->cls != MOLT_DB_VALUE_JSON)
            LACKS(t, "a text or JSON class, since its bytes are its text");
        if (t->members & ~members_of_class(t->cls))
            LACKS(t, "struct members its class can fill");
        check_text_output(t);
        check_arrow(t);
    }
    ASSERT(n >= 24);
}

TEST_MAIN(TEST_ENTRY(every_catalog_scalar_has_a_line), TEST_ENTRY(every_line_is_whole))
