/* The JSON value writer. */
#include "encode.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "molt_db/types.h"

/* Separator before a value: ',' between items, ':' between key and value. */
static void sep(mw_enc *e)
{
    if (e->depth == 0)
        return;
    int d = e->depth - 1;
    if (d >= MW_ENC_MAX_DEPTH)
        return;
    uint32_t k = e->items[d]++;
    if (k == 0)
        return;
    if (e->is_map[d])
        molt_db_buf_put_u8(e->out, (k & 1) ? ':' : ',');
    else
        molt_db_buf_put_u8(e->out, ',');
}

static void put(mw_enc *e, const char *s)
{
    molt_db_buf_put(e->out, s, strlen(s));
}

static void j_nil(mw_enc *e) { sep(e); put(e, "null"); }
static void j_bool(mw_enc *e, int v) { sep(e); put(e, v ? "true" : "false"); }
static void j_i64(mw_enc *e, int64_t v)
{
    char b[24];
    sep(e);
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    molt_db_buf_put(e->out, b, (size_t)n);
}

static void j_strbody(mw_enc *e, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    molt_db_buf_put_u8(e->out, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        molt_db_buf_put(e->out, p + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 0};
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            molt_db_buf_put(e->out, esc, 6);
            continue;
        }
        molt_db_buf_put(e->out, esc, 2);
    }
    molt_db_buf_put(e->out, p + run, n - run);
    molt_db_buf_put_u8(e->out, '"');
}

static void j_str(mw_enc *e, const char *p, size_t n)
{
    sep(e);
    j_strbody(e, p, n);
}

static void j_f64(mw_enc *e, double v, const char *text)
{
    char b[MOLT_DB_FLOAT_TEXT_SIZE];
    sep(e);
    if (isnan(v)) {
        put(e, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        put(e, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    if (!text) {
        molt_db_format_float8(v, b);
        text = b;
    }
    put(e, text);
}

static void j_bin(mw_enc *e, const uint8_t *p, size_t n)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sep(e);
    molt_db_buf_put_u8(e->out, '"');
    if (molt_db_buf_reserve(e->out, (n + 2) / 3 * 4 + 1) != MOLT_DB_OK)
        return;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63], b64[v & 63]};
        molt_db_buf_put(e->out, q, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], '=', '='};
        molt_db_buf_put(e->out, q, 4);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63], '='};
        molt_db_buf_put(e->out, q, 4);
    }
    molt_db_buf_put_u8(e->out, '"');
}

static void j_json(mw_enc *e, const char *p, size_t n)
{
    sep(e);
    molt_db_buf_put(e->out, p, n);
}

static void j_ts(mw_enc *e, int64_t us)
{
    /* days and time of day since the Unix epoch, floor division */
    int64_t days = us / MOLT_DB_USECS_PER_DAY, tod = us % MOLT_DB_USECS_PER_DAY;
    if (tod < 0) {
        tod += MOLT_DB_USECS_PER_DAY;
        days--;
    }
    int y, m, d;
    molt_db_date_to_ymd((int32_t)(days - 10957), &y, &m, &d); /* 2000-01-01 */
    int64_t s = tod / 1000000, frac = tod % 1000000;
    char b[64];
    int n = snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d,
                     (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60));
    if (frac) {
        n += snprintf(b + n, sizeof b - (size_t)n, ".%06d", (int)frac);
        while (b[n - 1] == '0')
            n--;
    }
    memcpy(b + n, "+00:00", 7);
    j_str(e, b, (size_t)n + 6);
}

static void open_(mw_enc *e, int is_map)
{
    sep(e);
    molt_db_buf_put_u8(e->out, is_map ? '{' : '[');
    if (e->depth < MW_ENC_MAX_DEPTH) {
        e->items[e->depth] = 0;
        e->is_map[e->depth] = (uint8_t)is_map;
    }
    e->depth++;
}

static void close_(mw_enc *e, int is_map)
{
    e->depth--;
    molt_db_buf_put_u8(e->out, is_map ? '}' : ']');
}

static void j_array(mw_enc *e, size_t n) { (void)n; open_(e, 0); }
static void j_array_end(mw_enc *e) { close_(e, 0); }
static void j_map(mw_enc *e, size_t n) { (void)n; open_(e, 1); }
static void j_map_end(mw_enc *e) { close_(e, 1); }

const mw_enc_ops mw_enc_json_ops = {
    j_nil, j_bool, j_i64, j_f64, j_str, j_bin, j_json, j_ts,
    j_array, j_array_end, j_map, j_map_end,
};
