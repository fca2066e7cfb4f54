/* msgpack-c packers over molt_db_buf; object helpers. */
#include "mpbuf.h"

#include <string.h>

static int buf_write(void *data, const char *p, size_t len)
{
    molt_db_buf *b = data;
    molt_db_buf_put(b, p, len);
    return b->failed ? -1 : 0;
}

void mw_packer_init(msgpack_packer *pk, molt_db_buf *b)
{
    msgpack_packer_init(pk, b, buf_write);
}

void mw_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    if (n < 32 && pk->callback == buf_write) {
        /* a fixstr (every key and status): header and bytes in one write */
        char b[32];
        b[0] = (char)(0xa0 | n);
        memcpy(b + 1, s, n);
        buf_write(pk->data, b, n + 1);
        return;
    }
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

int mw_obj_is_str(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

const msgpack_object *mw_map_get(const msgpack_object *m, const char *key,
                                 int *dup)
{
    const msgpack_object *found = NULL;
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == n &&
            memcmp(kv->key.via.str.ptr, key, n) == 0) {
            if (found && dup)
                *dup = 1;
            if (!found)
                found = &kv->val;
        }
    }
    return found;
}

void mw_pack_bool(msgpack_packer *pk, int v)
{
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}
