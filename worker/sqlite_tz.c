/* TZif zones with Python zoneinfo's semantics: see sqlite_tz.h.
 * The file format is RFC 8536; the rules for choosing an offset mirror
 * CPython's Lib/zoneinfo/_zoneinfo.py (ZoneInfo._find_trans, fromutc,
 * _TZStr, _DayOffset, _CalendarOffset), so that Django's functions computed
 * here agree with the ones Django computes in Python. */
#include "sqlite_tz.h"

#include "civil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_FILE_MAX (1 << 20)

/* One rule date of a POSIX TZ string: Mm.w.d, Jn or n, plus a time. */
typedef struct {
    char kind; /* 'M', 'J' or 'n' */
    int m, w, d;
    int32_t secs; /* the time of day, may be negative or past 24 h */
} tz_rule_day;

struct mw_tz {
    char key[256];
    int refs;             /* callers holding it (under cache_lock) */
    uint64_t last_use;    /* the cache's clock at its last mw_tz_get */
    int ntrans;
    int64_t *trans_utc;
    int64_t *trans_local; /* the fold=0 wall-clock times of the transitions */
    int32_t *trans_off;   /* the offset in force after each transition */
    int32_t before_off;   /* before the first transition */
    int has_rule;         /* past the last transition: a DST rule ... */
    int32_t after_off;    /* ... or this fixed offset */
    int32_t std_off, dst_off;
    tz_rule_day start, end;
};

static const char *const tz_dirs[] = {"/usr/share/zoneinfo", "/usr/lib/zoneinfo",
                                      "/usr/share/lib/zoneinfo", "/etc/zoneinfo"};

const char *mw_tz_strerror(mw_tz_status s)
{
    switch (s) {
    case MW_TZ_OK: return "ok";
    case MW_TZ_EINVAL: return "not a valid time zone key";
    case MW_TZ_ENOTFOUND: return "no such time zone";
    case MW_TZ_EFORMAT: return "unreadable time zone file";
    case MW_TZ_ENOMEM: return "out of memory (or too many distinct time zones)";
    }
    return "?";
}

/* ---- the POSIX TZ footer ---------------------------------------------- */

/* [+-]h{1,3}[:mm[:ss]] -> seconds, sign applied; NULL if it does not parse. */
static const char *parse_hms(const char *p, int32_t *out, int *hours)
{
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    int h = 0, n = 0;
    while (*p >= '0' && *p <= '9' && n < 3) {
        h = h * 10 + (*p++ - '0');
        n++;
    }
    if (!n)
        return NULL;
    int m = 0, s = 0;
    if (p[0] == ':' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9') {
        m = (p[1] - '0') * 10 + (p[2] - '0');
        p += 3;
        if (p[0] == ':' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9') {
            s = (p[1] - '0') * 10 + (p[2] - '0');
            p += 3;
        }
    }
    *hours = h;
    *out = (h * 3600 + m * 60 + s) * (neg ? -1 : 1);
    return p;
}

/* std or dst designation: <...> or a run of chars outside "<0-9:.+-," */
static const char *parse_abbr(const char *p)
{
    const char *q = p;
    if (*q == '<') {
        q++;
        while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
               (*q >= '0' && *q <= '9') || *q == '+' || *q == '-')
            q++;
        return *q == '>' && q > p + 1 ? q + 1 : NULL;
    }
    while (*q && !strchr("<0123456789:.+-,", *q))
        q++;
    return q > p ? q : NULL;
}

/* An offset as the TZ string writes it (west positive) -> seconds east. */
static const char *parse_offset(const char *p, int32_t *east)
{
    int32_t v;
    int h;
    p = parse_hms(p, &v, &h);
    if (!p || h > 24)
        return NULL;
    *east = -v;
    return p;
}

static const char *parse_rule_day(const char *p, tz_rule_day *r)
{
    r->secs = 2 * 3600;
    if (*p == 'M') {
        /* M(\d{1,2})\.(\d).(\d) -- Python's pattern takes any char as the
         * second separator */
        int m = 0, n = 0;
        p++;
        while (*p >= '0' && *p <= '9' && n < 2) {
            m = m * 10 + (*p++ - '0');
            n++;
        }
        if (!n || p[0] != '.' || !(p[1] >= '0' && p[1] <= '9') || !p[2] ||
            !(p[3] >= '0' && p[3] <= '9'))
            return NULL;
        r->kind = 'M';
        r->m = m;
        r->w = p[1] - '0';
        r->d = p[3] - '0';
        p += 4;
        if (r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d > 6)
            return NULL;
    } else {
        r->kind = 'n';
        if (*p == 'J') {
            r->kind = 'J';
            p++;
        }
        int d = 0, n = 0;
        while (*p >= '0' && *p <= '9' && n < 4) {
            d = d * 10 + (*p++ - '0');
            n++;
        }
        if (!n || d > 365 || (r->kind == 'J' && d < 1))
            return NULL;
        r->d = d;
    }
    if (*p == '/') {
        int h;
        p = parse_hms(p + 1, &r->secs, &h);
        if (!p || h > 167)
            return NULL;
    }
    return p;
}

static int parse_footer(mw_tz *z, const char *s)
{
    const char *p = parse_abbr(s);
    if (!p)
        return -1;
    int32_t std = 0;
    if (*p && *p != ',') {
        if (!(p = parse_offset(p, &std)))
            return -1;
    }
    if (!*p) {
        z->after_off = std;
        return 0;
    }
    if (*p == ',')
        return -1; /* a rule without DST */
    if (!(p = parse_abbr(p)))
        return -1;
    int32_t dst = std + 3600;
    if (*p && *p != ',' && !(p = parse_offset(p, &dst)))
        return -1;
    if (*p != ',' || !(p = parse_rule_day(p + 1, &z->start)) || *p != ',' ||
        !(p = parse_rule_day(p + 1, &z->end)) || *p)
        return -1;
    z->has_rule = 1;
    z->std_off = std;
    z->dst_off = dst;
    return 0;
}

/* _DayOffset / _CalendarOffset .year_to_epoch: the rule's wall-clock time in
 * `year`, as seconds since 1970-01-01 of that wall clock. */
static int64_t rule_local(const tz_rule_day *r, int year)
{
    int64_t days;
    if (r->kind == 'M') {
        int first = civil_isoweekday(civil_days_from(year, r->m, 1)) - 1; /* Mon 0 */
        int dim = civil_days_in_month(year, r->m);
        int md = ((r->d - (first + 1)) % 7 + 7) % 7 + 1 + (r->w - 1) * 7;
        if (md > dim)
            md -= 7;
        days = civil_days_from(year, r->m, md);
    } else {
        /* Python: (days before the year, counted from 1970-01-01 less one) + d */
        int d = r->d;
        if (r->kind == 'J' && d >= 59 && civil_is_leap(year))
            d++;
        days = civil_days_from(year, 1, 1) - 1 + d;
    }
    return days * 86400 + r->secs;
}

static int32_t rule_offset_local(const mw_tz *z, int64_t ts, int year)
{
    int64_t start = rule_local(&z->start, year), end = rule_local(&z->end, year);
    int32_t diff = z->dst_off - z->std_off;
    if (diff >= 0) /* fold 0 == (diff >= 0) is false */
        start += diff;
    else
        end -= diff;
    int isdst = start < end ? (start <= ts && ts < end) : !(end <= ts && ts < start);
    return isdst ? z->dst_off : z->std_off;
}

static int32_t rule_offset_utc(const mw_tz *z, int64_t ts, int year)
{
    int64_t start = rule_local(&z->start, year) - z->std_off;
    int64_t end = rule_local(&z->end, year) - z->dst_off;
    int isdst = start < end ? (start <= ts && ts < end) : !(end <= ts && ts < start);
    return isdst ? z->dst_off : z->std_off;
}

/* ---- lookups ------------------------------------------------------------ */

/* the number of entries of a[0..n) that are <= v */
static int upper_bound(const int64_t *a, int n, int64_t v)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (a[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int32_t mw_tz_offset_at_local(const mw_tz *z, int64_t ts, int year)
{
    int n = z->ntrans;
    if (n && ts < z->trans_local[0])
        return z->before_off;
    if (!n || ts > z->trans_local[n - 1])
        return z->has_rule ? rule_offset_local(z, ts, year) : z->after_off;
    return z->trans_off[upper_bound(z->trans_local, n, ts) - 1];
}

int32_t mw_tz_offset_at_utc(const mw_tz *z, int64_t ts, int year)
{
    int n = z->ntrans;
    if (n && ts < z->trans_utc[0])
        return z->before_off;
    if (!n || ts > z->trans_utc[n - 1])
        return z->has_rule ? rule_offset_utc(z, ts, year) : z->after_off;
    return z->trans_off[upper_bound(z->trans_utc, n, ts) - 1];
}

/* ---- loading a TZif file ------------------------------------------------ */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static void tz_free(mw_tz *z)
{
    if (!z)
        return;
    free(z->trans_utc);
    free(z->trans_local);
    free(z->trans_off);
    free(z);
}

/* Parses a whole TZif file into z. */
static mw_tz_status tz_parse(mw_tz *z, const uint8_t *b, size_t len)
{
    if (len < 44 || memcmp(b, "TZif", 4))
        return MW_TZ_EFORMAT;
    int version = b[4];
    size_t tsize = 4, off = 0;
    uint32_t cnt[6];
    for (int pass = 0;; pass++) {
        if (len - off < 44 || memcmp(b + off, "TZif", 4))
            return MW_TZ_EFORMAT;
        for (int i = 0; i < 6; i++)
            cnt[i] = be32(b + off + 20 + 4 * i);
        /* isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
        for (int i = 0; i < 6; i++)
            if (cnt[i] > TZ_FILE_MAX)
                return MW_TZ_EFORMAT;
        size_t body = cnt[3] * tsize + cnt[3] + cnt[4] * 6 + cnt[5] +
                      cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
        off += 44;
        if (len - off < body)
            return MW_TZ_EFORMAT;
        if (version < '2' || pass == 1)
            break;
        off += body; /* skip the 32-bit block */
        tsize = 8;
    }
    uint32_t ntrans = cnt[3], ntypes = cnt[4];
    if (!ntypes)
        return MW_TZ_EFORMAT;
    const uint8_t *times = b + off, *idx = times + ntrans * tsize,
                  *types = idx + ntrans;
    int32_t *utoff = malloc(ntypes * sizeof *utoff);
    if (!utoff)
        return MW_TZ_ENOMEM;
    int before = -1;
    for (uint32_t i = 0; i < ntypes; i++) {
        utoff[i] = (int32_t)be32(types + 6 * i);
        if (before < 0 && !types[6 * i + 4])
            before = (int)i;
    }
    z->ntrans = (int)ntrans;
    if (ntrans) {
        z->trans_utc = malloc(ntrans * sizeof *z->trans_utc);
        z->trans_local = malloc(ntrans * sizeof *z->trans_local);
        z->trans_off = malloc(ntrans * sizeof *z->trans_off);
        if (!z->trans_utc || !z->trans_local || !z->trans_off) {
            free(utoff);
            return MW_TZ_ENOMEM;
        }
    }
    int32_t prev = utoff[0];
    for (uint32_t i = 0; i < ntrans; i++) {
        if (idx[i] >= ntypes) {
            free(utoff);
            return MW_TZ_EFORMAT;
        }
        int64_t t = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        int32_t now = utoff[idx[i]];
        z->trans_utc[i] = t;
        z->trans_off[i] = now;
        z->trans_local[i] = t + (now > prev ? now : prev); /* fold 0: the larger */
        prev = now;
    }
    z->before_off = before >= 0 ? utoff[before] : (ntrans ? z->trans_off[0] : utoff[0]);
    z->after_off = ntrans ? z->trans_off[ntrans - 1] : utoff[ntypes - 1];
    free(utoff);
    if (version >= '2') {
        const uint8_t *f = types + ntypes * 6 + cnt[5] + cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
        const uint8_t *endp = b + len;
        if (f >= endp || *f != '\n')
            return MW_TZ_EFORMAT;
        const uint8_t *nl = memchr(f + 1, '\n', (size_t)(endp - f - 1));
        if (!nl || nl - f - 1 > 255)
            return MW_TZ_EFORMAT;
        char footer[256];
        memcpy(footer, f + 1, (size_t)(nl - f - 1));
        footer[nl - f - 1] = 0;
        if (footer[0] && parse_footer(z, footer) < 0)
            return MW_TZ_EFORMAT;
    }
    return MW_TZ_OK;
}

/* Python's _validate_tzfile_path: a normalised relative path, nothing that
 * climbs out of the zoneinfo directory. */
static int key_ok(const char *k)
{
    size_t n = strlen(k);
    if (!n || n >= sizeof ((mw_tz *)0)->key || k[0] == '/' || k[n - 1] == '/')
        return 0;
    for (const char *p = k; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c >= 0x7f || c == '\\')
            return 0;
    }
    for (const char *seg = k; seg;) {
        const char *e = strchr(seg, '/');
        size_t sl = e ? (size_t)(e - seg) : strlen(seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
        seg = e ? e + 1 : NULL;
    }
    return 1;
}

static mw_tz_status tz_load(const char *key, mw_tz **out)
{
    if (!key_ok(key))
        return MW_TZ_EINVAL;
    FILE *f = NULL;
    for (size_t i = 0; i < sizeof tz_dirs / sizeof *tz_dirs && !f; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", tz_dirs[i], key);
        f = fopen(path, "rb");
    }
    if (!f)
        return MW_TZ_ENOTFOUND;
    uint8_t *buf = malloc(TZ_FILE_MAX);
    if (!buf) {
        fclose(f);
        return MW_TZ_ENOMEM;
    }
    size_t len = fread(buf, 1, TZ_FILE_MAX, f);
    int bad = ferror(f) || len == TZ_FILE_MAX; /* a directory reads as an error */
    fclose(f);
    mw_tz *z = calloc(1, sizeof *z);
    mw_tz_status st = !z ? MW_TZ_ENOMEM
                         : bad ? MW_TZ_ENOTFOUND : tz_parse(z, buf, len);
    free(buf);
    if (st != MW_TZ_OK) {
        tz_free(z);
        return st;
    }
    snprintf(z->key, sizeof z->key, "%s", key);
    *out = z;
    return MW_TZ_OK;
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static mw_tz *cache[MW_TZ_CACHE_MAX];
static int ncache;
static uint64_t cache_clock;

/* Under cache_lock, with the cache full: drops the least recently used
 * zone nobody holds. 0, or -1 when every zone is held. */
static int evict(void)
{
    int lru = -1;
    for (int i = 0; i < ncache; i++)
        if (cache[i]->refs == 0 && (lru < 0 || cache[i]->last_use < cache[lru]->last_use))
            lru = i;
    if (lru < 0)
        return -1;
    tz_free(cache[lru]);
    cache[lru] = cache[--ncache];
    return 0;
}

const mw_tz *mw_tz_get(const char *key, mw_tz_status *status)
{
    mw_tz *z = NULL;
    mw_tz_status st = MW_TZ_OK;
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < ncache; i++)
        if (!strcmp(cache[i]->key, key)) {
            z = cache[i];
            break;
        }
    if (!z) {
        /* loaded under the lock: a few kB read once per zone; a zone is
         * evicted only for one that loaded (an unknown name evicts none) */
        if ((st = tz_load(key, &z)) == MW_TZ_OK) {
            if (ncache == MW_TZ_CACHE_MAX && evict() < 0) {
                tz_free(z);
                z = NULL;
                st = MW_TZ_ENOMEM;
            } else {
                cache[ncache++] = z;
            }
        }
    }
    if (z) {
        z->refs++;
        z->last_use = ++cache_clock;
    }
    pthread_mutex_unlock(&cache_lock);
    *status = st;
    return z;
}

void mw_tz_release(const mw_tz *z)
{
    pthread_mutex_lock(&cache_lock);
    ((mw_tz *)z)->refs--;
    pthread_mutex_unlock(&cache_lock);
}
