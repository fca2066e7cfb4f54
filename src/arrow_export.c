/* Arrow builder exports: the ArrowSchema, owned batches (finish) and
 * borrowed views. */
#include "arrow_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- schema -------------------------------------------------------------- */

typedef struct schema_priv {
    char *format;
    char *name;
    char *metadata;
    struct ArrowSchema **children;
} schema_priv;

static void schema_release(struct ArrowSchema *s)
{
    if (s == NULL || s->release == NULL)
        return;
    schema_priv *p = s->private_data;
    for (int64_t i = 0; i < s->n_children; i++) {
        if (p->children[i] != NULL) {
            if (p->children[i]->release != NULL)
                p->children[i]->release(p->children[i]);
            free(p->children[i]);
        }
    }
    free(p->children);
    free(p->format);
    free(p->name);
    free(p->metadata);
    free(p);
    s->release = NULL;
}

static char *dup_bytes(const char *src, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, src, n);
        d[n] = '\0';
    }
    return d;
}

/* Makes *s a node with room for n children (each allocated and zeroed, so
 * a partly built tree releases cleanly). meta may be NULL. */
static int schema_node(struct ArrowSchema *s, const char *format,
                       const char *name, const char *meta, size_t meta_len,
                       int64_t flags, int64_t n)
{
    memset(s, 0, sizeof *s);
    schema_priv *p = calloc(1, sizeof *p);
    if (p == NULL)
        return MOLT_DB_ENOMEM;
    s->private_data = p;
    s->release = schema_release;
    s->n_children = 0;
    p->format = dup_bytes(format, strlen(format));
    p->name = dup_bytes(name, strlen(name));
    p->metadata = meta ? dup_bytes(meta, meta_len) : NULL;
    p->children = calloc(n ? (size_t)n : 1, sizeof *p->children);
    if (p->format == NULL || p->name == NULL || (meta && !p->metadata) ||
        p->children == NULL)
        return MOLT_DB_ENOMEM;
    s->format = p->format;
    s->name = p->name;
    s->metadata = p->metadata;
    s->flags = flags;
    s->children = p->children;
    for (int64_t i = 0; i < n; i++) {
        p->children[i] = calloc(1, sizeof **p->children);
        if (p->children[i] == NULL)
            return MOLT_DB_ENOMEM;
        s->n_children = i + 1;
    }
    return MOLT_DB_OK;
}

static void meta_put_str(uint8_t **w, const char *str)
{
    int32_t n = (int32_t)strlen(str);
    memcpy(*w, &n, 4);
    memcpy(*w + 4, str, (size_t)n);
    *w += 4 + (size_t)n;
}

/* The C Data Interface metadata for an extension type: two pairs,
 * ARROW:extension:name = ext and ARROW:extension:metadata = "". */
static size_t ext_metadata(const char *ext, uint8_t out[128])
{
    uint8_t *w = out;
    int32_t pairs = 2;
    memcpy(w, &pairs, 4);
    w += 4;
    meta_put_str(&w, "ARROW:extension:name");
    meta_put_str(&w, ext);
    meta_put_str(&w, "ARROW:extension:metadata");
    meta_put_str(&w, "");
    return (size_t)(w - out);
}

static const char *kind_format(const molt_db__arrow_col *c, char *buf, size_t n)
{
    switch (c->kind) {
    case MOLT_DB__AK_BOOL: return "b";
    case MOLT_DB__AK_I16: return "s";
    case MOLT_DB__AK_I32: return "i";
    case MOLT_DB__AK_I64: return "l";
    case MOLT_DB__AK_U32: return "I";
    case MOLT_DB__AK_F32: return "f";
    case MOLT_DB__AK_F64: return "g";
    case MOLT_DB__AK_DEC128:
        snprintf(buf, n, "d:%d,%d", (int)c->precision, (int)c->scale);
        return buf;
    case MOLT_DB__AK_BINARY: return "z";
    case MOLT_DB__AK_UUID: return "w:16";
    case MOLT_DB__AK_DATE32: return "tdD";
    case MOLT_DB__AK_TIME64: return "ttu";
    case MOLT_DB__AK_TS: return "tsu:";
    case MOLT_DB__AK_TSTZ: return "tsu:UTC";
    case MOLT_DB__AK_INTERVAL: return "+s";
    default: return "u";
    }
}

static int col_schema(const molt_db__arrow_col *c, struct ArrowSchema *s)
{
    static const char *const iv_names[3] = {"months", "days", "micros"};
    static const char *const iv_formats[3] = {"i", "i", "l"};
    char fmt[32];
    uint8_t meta[128];
    size_t meta_len = c->ext ? ext_metadata(c->ext, meta) : 0;
    int n = molt_db__arrow_col_children(c);
    int rc = schema_node(s, kind_format(c, fmt, sizeof fmt), c->name,
                         c->ext ? (const char *)meta : NULL, meta_len,
                         ARROW_FLAG_NULLABLE, n);
    for (int i = 0; rc == MOLT_DB_OK && i < n; i++)
        rc = schema_node(s->children[i], iv_formats[i], iv_names[i], NULL, 0,
                         ARROW_FLAG_NULLABLE, 0);
    return rc;
}

int molt_db_arrow_builder_schema(const molt_db_arrow_builder *b,
                                 struct ArrowSchema *out, molt_db_error *err)
{
    int rc = schema_node(out, "+s", "", NULL, 0, 0, (int64_t)b->ncols);
    for (size_t i = 0; rc == MOLT_DB_OK && i < b->ncols; i++)
        rc = col_schema(&b->cols[i], out->children[i]);
    if (rc != MOLT_DB_OK) {
        if (out->release)
            out->release(out);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    }
    return MOLT_DB_OK;
}

/* ---- buffer layout of a column ----------------------------------------- */

/* Fills a column's ArrowArray fields and buffer pointers; children (for
 * interval) get their own. Shared by the view and the owned export. */
static void col_layout(const molt_db__arrow_col *c, int64_t rows,
                       struct ArrowArray *a, const void **bufs,
                       struct ArrowArray *kids, const void *(*kid_bufs)[2])
{
    memset(a, 0, sizeof *a);
    a->length = rows;
    a->null_count = c->null_count;
    a->buffers = bufs;
    bufs[0] = c->null_count ? c->validity.data : NULL;
    switch (c->kind) {
    case MOLT_DB__AK_UTF8:
    case MOLT_DB__AK_BINARY:
        a->n_buffers = 3;
        bufs[1] = c->values.data;
        bufs[2] = c->data.data;
        break;
    case MOLT_DB__AK_INTERVAL: {
        const molt_db_buf *src[3] = {&c->values, &c->data, &c->extra};
        a->n_buffers = 1;
        a->n_children = 3;
        for (int i = 0; i < 3; i++) {
            memset(&kids[i], 0, sizeof kids[i]);
            kids[i].length = rows;
            kids[i].n_buffers = 2;
            kids[i].buffers = kid_bufs[i];
            kid_bufs[i][0] = NULL;
            kid_bufs[i][1] = src[i]->data;
        }
        break;
    }
    default:
        a->n_buffers = 2;
        bufs[1] = c->values.data;
        break;
    }
}

/* ---- borrowed view -------------------------------------------------------- */

static void view_release(struct ArrowArray *a)
{
    a->release = NULL;
}

void molt_db_arrow_builder_view(molt_db_arrow_builder *b, struct ArrowArray *out)
{
    for (size_t i = 0; i < b->ncols; i++) {
        molt_db__arrow_col *c = &b->cols[i];
        col_layout(c, b->rows, &c->view, c->view_bufs, c->child_view,
                   c->child_bufs);
        for (int k = 0; k < 3; k++) {
            c->child_view[k].release = view_release;
            c->child_ptrs[k] = &c->child_view[k];
        }
        c->view.children = c->view.n_children ? c->child_ptrs : NULL;
        c->view.release = view_release;
        b->view_children[i] = &c->view;
    }
    memset(&b->view, 0, sizeof b->view);
    b->view.length = b->rows;
    b->view.n_buffers = 1;
    b->view_bufs[0] = NULL;
    b->view.buffers = b->view_bufs;
    b->view.n_children = (int64_t)b->ncols;
    b->view.children = b->view_children;
    b->view.release = view_release;
    *out = b->view;
}

/* ---- owned export (finish) --------------------------------------------- */

/* One allocation per column node holds its ArrowArray, buffer pointers,
 * children and the memory it took over from the builder. */
typedef struct col_node {
    struct ArrowArray arr;
    const void *bufs[3];
    struct ArrowArray kids[3];
    const void *kid_bufs[3][2];
    struct ArrowArray *kid_ptrs[3];
    void *mem[4];
} col_node;

typedef struct top_node {
    const void *bufs[1];
    struct ArrowArray **children;
    int64_t n;
} top_node;

static void kid_release(struct ArrowArray *a)
{
    a->release = NULL; /* memory belongs to the parent column node */
}

static void col_release(struct ArrowArray *a)
{
    col_node *n = a->private_data;
    for (int i = 0; i < 3; i++)
        if (n->kids[i].release)
            n->kids[i].release(&n->kids[i]);
    for (int i = 0; i < 4; i++)
        free(n->mem[i]);
    a->release = NULL;
    free(n); /* a is n->arr: nothing touches it after this */
}

static void top_release(struct ArrowArray *a)
{
    top_node *t = a->private_data;
    for (int64_t i = 0; i < t->n; i++) {
        struct ArrowArray *c = t->children[i];
        if (c->release)
            c->release(c); /* frees the column node c lives in */
    }
    free(t->children);
    free(t);
    a->release = NULL;
}

static void *steal(molt_db_buf *b)
{
    void *p = b->data;
    molt_db_buf_init(b);
    return p;
}

int molt_db_arrow_builder_finish(molt_db_arrow_builder *b,
                                 struct ArrowArray *out, molt_db_error *err)
{
    memset(out, 0, sizeof *out);
    top_node *t = calloc(1, sizeof *t);
    col_node **nodes = calloc(b->ncols ? b->ncols : 1, sizeof *nodes);
    int ok = t != NULL && nodes != NULL;
    if (ok)
        t->children = calloc(b->ncols ? b->ncols : 1, sizeof *t->children);
    ok = ok && t->children != NULL;
    for (size_t i = 0; ok && i < b->ncols; i++)
        ok = (nodes[i] = calloc(1, sizeof **nodes)) != NULL;
    if (!ok) {
        for (size_t i = 0; nodes && i < b->ncols; i++)
            free(nodes[i]);
        free(nodes);
        if (t)
            free(t->children);
        free(t);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    }
    /* From here nothing can fail: the buffers move into the nodes. */
    for (size_t i = 0; i < b->ncols; i++) {
        molt_db__arrow_col *c = &b->cols[i];
        col_node *n = nodes[i];
        col_layout(c, b->rows, &n->arr, n->bufs, n->kids, n->kid_bufs);
        for (int k = 0; k < n->arr.n_children; k++) {
            n->kids[k].release = kid_release;
            n->kid_ptrs[k] = &n->kids[k];
        }
        n->arr.children = n->arr.n_children ? n->kid_ptrs : NULL;
        n->arr.private_data = n;
        n->arr.release = col_release;
        n->mem[0] = steal(&c->validity);
        n->mem[1] = steal(&c->values);
        n->mem[2] = steal(&c->data);
        n->mem[3] = steal(&c->extra);
        t->children[i] = &n->arr;
    }
    free(nodes);
    t->n = (int64_t)b->ncols;
    t->bufs[0] = NULL;
    out->length = b->rows;
    out->n_buffers = 1;
    out->buffers = t->bufs;
    out->n_children = (int64_t)b->ncols;
    out->children = t->children;
    out->private_data = t;
    out->release = top_release;
    /* Fresh buffers for the next batch; a failure here surfaces as ENOMEM
     * on the next append (the buffers stay empty and valid). */
    (void)molt_db__arrow_builder_start(b);
    return MOLT_DB_OK;
}
