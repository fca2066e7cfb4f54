/* Arrow builder exports: the ArrowSchema, owned batches (finish) and
 * borrowed views. */
#include "arrow_internal.h"

#include <stdatomic.h>
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
    case MOLT_DB__AK_LIST: return "+l";
    case MOLT_DB__AK_STRUCT: return "+s";
    default: return "u";
    }
}

static int col_schema(const molt_db__arrow_col *c, struct ArrowSchema *s)
{
    char fmt[32];
    uint8_t meta[128];
    size_t meta_len = c->ext ? ext_metadata(c->ext, meta) : 0;
    int rc = schema_node(s, kind_format(c, fmt, sizeof fmt), c->name,
                         c->ext ? (const char *)meta : NULL, meta_len,
                         ARROW_FLAG_NULLABLE, (int64_t)c->nkids);
    for (size_t i = 0; rc == MOLT_DB_OK && i < c->nkids; i++)
        rc = col_schema(&c->kids[i], s->children[i]);
    return rc;
}

int molt_db_arrow_builder_schema(molt_db_arrow_builder *b,
                                 struct ArrowSchema *out, molt_db_error *err)
{
    molt_db__arrow_builder_freeze(b);
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

/* Fills a column node's ArrowArray fields and buffer pointers (children
 * are the caller's business). */
static void col_layout(const molt_db__arrow_col *c, struct ArrowArray *a,
                       const void **bufs)
{
    memset(a, 0, sizeof *a);
    a->length = c->length;
    a->null_count = c->null_count;
    a->n_buffers = molt_db__arrow_col_nbuffers(c);
    a->n_children = (int64_t)c->nkids;
    a->buffers = bufs;
    bufs[0] = c->null_count ? c->validity.data : NULL;
    if (a->n_buffers > 1)
        bufs[1] = c->values.data;
    if (a->n_buffers > 2)
        bufs[2] = c->data.data;
}

/* ---- borrowed view -------------------------------------------------------- */

static void view_release(struct ArrowArray *a)
{
    a->release = NULL;
}

static void col_view(molt_db__arrow_col *c)
{
    col_layout(c, &c->view, c->view_bufs);
    for (size_t i = 0; i < c->nkids; i++) {
        col_view(&c->kids[i]);
        c->view_kids[i] = &c->kids[i].view;
    }
    c->view.children = c->nkids ? c->view_kids : NULL;
    c->view.release = view_release;
}

void molt_db_arrow_builder_view(molt_db_arrow_builder *b, struct ArrowArray *out)
{
    for (size_t i = 0; i < b->ncols; i++) {
        col_view(&b->cols[i]);
        b->view_children[i] = &b->cols[i].view;
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

/*
 * One allocation holds every node of a batch (the top struct and each
 * column node, pre-order), the children pointer arrays, and the list of
 * buffer memory taken over from the builder. Each node's release releases
 * its live children, then drops one reference; the last one frees it all.
 * So a consumer may move a child out and release it later, as the C Data
 * Interface allows, and any thread may release.
 */
typedef struct batch_block batch_block;

typedef struct node {
    struct ArrowArray arr;
    const void *bufs[3];
    batch_block *blk;
} node;

struct batch_block {
    atomic_long refs;
    size_t nmem;
    void **mem;
    struct ArrowArray **kidptrs;
    node nodes[];
};

static void node_release(struct ArrowArray *a)
{
    node *n = a->private_data;
    batch_block *blk = n->blk;
    for (int64_t i = 0; i < a->n_children; i++)
        if (a->children[i]->release != NULL)
            a->children[i]->release(a->children[i]);
    a->release = NULL;
    if (atomic_fetch_sub(&blk->refs, 1) == 1) {
        for (size_t i = 0; i < blk->nmem; i++)
            free(blk->mem[i]);
        free(blk->mem);
        free(blk->kidptrs);
        free(blk);
    }
}

static size_t count_nodes(const molt_db__arrow_col *c)
{
    size_t n = 1;
    for (size_t i = 0; i < c->nkids; i++)
        n += count_nodes(&c->kids[i]);
    return n;
}

static void *steal(molt_db_buf *b)
{
    void *p = b->data;
    molt_db_buf_init(b);
    return p;
}

/* Fills node *next for column c (and its subtree), moving its buffers
 * into the block. Returns the node's array. */
static struct ArrowArray *fill(batch_block *blk, molt_db__arrow_col *c,
                               size_t *next, size_t *nextkid)
{
    node *n = &blk->nodes[(*next)++];
    col_layout(c, &n->arr, n->bufs);
    n->blk = blk;
    n->arr.private_data = n;
    n->arr.release = node_release;
    blk->mem[blk->nmem++] = steal(&c->validity);
    blk->mem[blk->nmem++] = steal(&c->values);
    blk->mem[blk->nmem++] = steal(&c->data);
    if (c->nkids) {
        struct ArrowArray **kids = blk->kidptrs + *nextkid;
        *nextkid += c->nkids;
        for (size_t i = 0; i < c->nkids; i++)
            kids[i] = fill(blk, &c->kids[i], next, nextkid);
        n->arr.children = kids;
    }
    return &n->arr;
}

int molt_db_arrow_builder_finish(molt_db_arrow_builder *b,
                                 struct ArrowArray *out, molt_db_error *err)
{
    memset(out, 0, sizeof *out);
    size_t nnodes = 1;
    for (size_t i = 0; i < b->ncols; i++)
        nnodes += count_nodes(&b->cols[i]);
    batch_block *blk = calloc(1, sizeof *blk + nnodes * sizeof(node));
    if (blk != NULL) {
        blk->mem = calloc(3 * nnodes, sizeof *blk->mem);
        blk->kidptrs = calloc(nnodes, sizeof *blk->kidptrs);
    }
    if (blk == NULL || blk->mem == NULL || blk->kidptrs == NULL) {
        if (blk != NULL) {
            free(blk->mem);
            free(blk->kidptrs);
        }
        free(blk);
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "arrow: out of memory");
    }
    /* From here nothing can fail: the buffers move into the block. */
    atomic_init(&blk->refs, (long)nnodes);
    node *top = &blk->nodes[0];
    size_t next = 1, nextkid = b->ncols;
    for (size_t i = 0; i < b->ncols; i++)
        blk->kidptrs[i] = fill(blk, &b->cols[i], &next, &nextkid);
    top->blk = blk;
    top->arr.length = b->rows;
    top->arr.n_buffers = 1;
    top->bufs[0] = NULL;
    top->arr.buffers = top->bufs;
    top->arr.n_children = (int64_t)b->ncols;
    top->arr.children = b->ncols ? blk->kidptrs : NULL;
    top->arr.private_data = top;
    top->arr.release = node_release;
    *out = top->arr;
    /* the top node's struct moved into *out: its private data still
     * points at the block, which is all release needs */
    out->private_data = top;
    /* Fresh buffers for the next batch; a failure here surfaces as ENOMEM
     * on the next append (the builder retries first). */
    (void)molt_db__arrow_builder_start(b);
    return MOLT_DB_OK;
}
