/* Structural pre-check of MsgPack bytes (see msgpack_check.h). */
#include "msgpack_check.h"

int mw_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            uint8_t d = p[i + k];
            if ((d & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (d & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

mw_mp_check mw_msgpack_check(const uint8_t *p, size_t len, size_t *end)
{
    /* remaining[d]: values still expected by the container at depth d */
    uint64_t remaining[MW_MP_MAX_DEPTH + 1];
    int depth = 0, bad_utf8 = 0;
    uint64_t elements = 0;
    size_t i = 0;
    remaining[0] = 1;
    while (depth > 0 || remaining[0] > 0) {
        if (remaining[depth] == 0) {
            depth--;
            continue;
        }
        remaining[depth]--;
        if (++elements > MW_MP_MAX_ELEMENTS)
            return MW_MP_TOO_MANY;
        if (i >= len)
            return MW_MP_TRUNCATED;
        uint8_t b = p[i++];
        uint64_t skip = 0;       /* payload bytes after the header */
        uint64_t children = 0;   /* values inside (arrays, maps x2) */
        int is_container = 0, is_str = 0, hdr = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        } else if (b <= 0x8f) {
            is_container = 1;
            children = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            is_container = 1;
            children = b & 0x0f;
        } else if (b <= 0xbf) {
            is_str = 1;
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc1:
                return MW_MP_INVALID;
            case 0xc4: case 0xc5: case 0xc6:
                hdr = 1 << (b - 0xc4);
                break;
            case 0xc7: case 0xc8: case 0xc9:
                hdr = 1 << (b - 0xc7);
                skip = 1; /* ext type byte */
                break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xd9: case 0xda: case 0xdb:
                is_str = 1;
                hdr = 1 << (b - 0xd9);
                break;
            case 0xdc: case 0xdd:
                is_container = 1;
                hdr = b == 0xdc ? 2 : 4;
                break;
            case 0xde: case 0xdf:
                is_container = 2;
                hdr = b == 0xde ? 2 : 4;
                break;
            default:
                return MW_MP_INVALID;
            }
        }
        if (hdr) {
            if ((size_t)hdr > len - i)
                return MW_MP_TRUNCATED;
            uint64_t n = be(p + i, hdr);
            i += (size_t)hdr;
            if (is_container)
                children = is_container == 2 ? 2 * n : n;
            else
                skip += n;
        }
        if (skip > len - i)
            return MW_MP_TRUNCATED;
        /* a bad str is remembered, not returned: the walk still proves the
         * rest bounded, because the envelope is unpacked anyway to find the
         * request_id it should answer */
        if (is_str && !bad_utf8 && !mw_utf8_valid(p + i, (size_t)skip))
            bad_utf8 = 1;
        i += (size_t)skip;
        if (is_container && children > 0) {
            /* every element takes at least one byte */
            if (children > len - i)
                return MW_MP_TRUNCATED;
            if (depth == MW_MP_MAX_DEPTH)
                return MW_MP_TOO_DEEP;
            remaining[++depth] = children;
        }
    }
    *end = i;
    return bad_utf8 ? MW_MP_BAD_UTF8 : MW_MP_OK;
}

const char *mw_msgpack_check_text(mw_mp_check c)
{
    switch (c) {
    case MW_MP_OK: return "ok";
    case MW_MP_TRUNCATED: return "truncated MsgPack value";
    case MW_MP_INVALID: return "invalid MsgPack type byte";
    case MW_MP_BAD_UTF8: return "invalid UTF-8 in a MsgPack str";
    case MW_MP_TOO_DEEP: return "MsgPack nesting too deep";
    case MW_MP_TOO_MANY: return "too many MsgPack elements";
    }
    return "bad MsgPack";
}
