/* libFuzzer harness: bytes read as an Arrow IPC stream by the _rows
 * extension's reader (python/ext/rows/arrow_ipc_read.c). Any bytes must be
 * refused or give a stream whose every array keeps to its buffers: each
 * value a consumer may read (validity and value bits, fixed-width values,
 * offsets and the bytes between them) is read here from a copy of the
 * input of its exact size, so ASan catches a read past it. Everything the
 * stream handed out must give back its reference to the owner (abort
 * otherwise). The first byte, when odd, cuts the input into two chunks at
 * the end of its first message's metadata; when its second bit is set the
 * stream is released after its first batch. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arrow_ipc_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int dropped;

static void drop(ipc_owner *o)
{
    (void)o;
    dropped++;
}

static volatile uint8_t sink;

static void touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        sink ^= b[i];
}

static size_t bits(int64_t n)
{
    return (size_t)(n + 7) / 8;
}

/* Bytes per value of a fixed-width format, 0 for the others. */
static size_t width(const char *f)
{
    switch (f[0]) {
    case 'c': case 'C': return 1;
    case 's': case 'S': case 'e': return 2;
    case 'i': case 'I': case 'f': return 4;
    case 'l': case 'L': case 'g': return 8;
    case 'd': return 16;
    case 'w': return (size_t)atoi(f + 2);
    case 't':
        if (f[1] == 'd')
            return f[2] == 'D' ? 4 : 8;
        if (f[1] == 't')
            return f[2] == 's' || f[2] == 'm' ? 4 : 8;
        return 8;
    default: return 0;
    }
}

static void walk(const struct ArrowSchema *s, const struct ArrowArray *a)
{
    if (a->offset != 0 || a->null_count < 0 || a->null_count > a->length)
        abort();
    if (a->buffers[0] != NULL)
        touch(a->buffers[0], bits(a->length));
    const char *f = s->format;
    int32_t lo = 0, hi = 0;
    if (strcmp(f, "b") == 0) {
        touch(a->buffers[1], bits(a->length));
    } else if (strcmp(f, "u") == 0 || strcmp(f, "z") == 0 || strcmp(f, "+l") == 0) {
        const int32_t *o = a->buffers[1];
        touch(o, 4 * ((size_t)a->length + 1));
        lo = o[0];
        hi = o[a->length];
        if (lo < 0 || hi < lo)
            abort();
        if (f[0] != '+')
            touch((const uint8_t *)a->buffers[2] + lo, (size_t)(hi - lo));
        else if (a->children[0]->length < hi)
            abort();
    } else if (f[0] != '+') {
        touch(a->buffers[1], (size_t)a->length * width(f));
    }
    if (a->n_children != s->n_children)
        abort();
    for (int64_t i = 0; i < a->n_children; i++) {
        if (strcmp(f, "+s") == 0 && a->children[i]->length < a->length)
            abort();
        walk(s->children[i], a->children[i]);
    }
}

/* The end of the first message's metadata in d (0 when there is none):
 * where a first chunk ends (a cut inside a message, before its body, is
 * refused, which the reader must also do cleanly). */
static size_t first_message_end(const uint8_t *d, size_t n)
{
    uint32_t ml;
    if (n < 8)
        return 0;
    memcpy(&ml, d + 4, 4);
    return ml > n - 8 ? 0 : 8 + (size_t)ml;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int split = data[0] & 1, half = data[0] & 2;
    data++;
    size--;
    /* 8-aligned copies of exactly the input's size */
    size_t cut = split ? first_message_end(data, size) : size;
    if (cut == 0)
        cut = size;
    uint8_t *a = malloc(cut ? cut : 1), *b = malloc(size - cut ? size - cut : 1);
    if (a == NULL || b == NULL)
        abort();
    memcpy(a, data, cut);
    memcpy(b, data + cut, size - cut);
    ipc_chunk chunks[2] = {{a, cut}, {b, size - cut}};
    ipc_owner owner = {.drop = drop};
    atomic_init(&owner.refs, 1);
    dropped = 0;
    struct ArrowArrayStream st;
    char err[256];
    int rc = ipc_stream_open(chunks, 2, &owner, &st, err, sizeof err);
    if (rc == 0) {
        struct ArrowSchema s;
        if (st.get_schema(&st, &s) != 0)
            abort();
        /* the first batch is released after the stream; the second bit of
         * the first byte releases the stream after that batch (half-read) */
        struct ArrowArray arr, first = {0};
        for (;;) {
            if (st.get_next(&st, &arr) != 0)
                abort();
            if (arr.release == NULL)
                break;
            walk(&s, &arr);
            if (first.release == NULL) {
                first = arr;
                if (half)
                    break;
            } else {
                arr.release(&arr);
            }
        }
        s.release(&s);
        st.release(&st);
        if (first.release != NULL)
            first.release(&first);
    }
    ipc_owner_unref(&owner);
    if (dropped != 1 || atomic_load(&owner.refs) != 0)
        abort(); /* a reference leaked, or was given back twice */
    free(a);
    free(b);
    return 0;
}
