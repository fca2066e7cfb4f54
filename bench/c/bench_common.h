/*
 * What molt_bench's timed modes share (bench_pk.c, bench_host.c): the
 * clock, the process's CPU, the aid generator and latency samples with
 * their percentiles, as bench/contenders.md reports them.
 */
#ifndef MOLT_BENCH_COMMON_H
#define MOLT_BENCH_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* user+sys CPU seconds of the whole process (every thread) */
static inline double bench_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* xorshift64: the aids, the same sequence for every molt mode */
static inline uint64_t bench_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef struct bench_lat {
    uint64_t *v;   /* ns */
    size_t n, cap;
} bench_lat;

static inline void bench_lat_add(bench_lat *l, uint64_t ns)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1 << 16;
        uint64_t *v = realloc(l->v, l->cap * sizeof *v);
        if (v == NULL) {
            fprintf(stderr, "molt_bench: out of memory\n");
            exit(1);
        }
        l->v = v;
    }
    l->v[l->n++] = ns;
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* the q-quantile in µs; sorts the samples */
static inline double bench_lat_pct_us(bench_lat *l, double q)
{
    if (l->n == 0)
        return 0;
    qsort(l->v, l->n, sizeof *l->v, bench_cmp_u64);
    size_t k = (size_t)ceil(q * (double)l->n);
    k = k == 0 ? 0 : k - 1;
    if (k >= l->n)
        k = l->n - 1;
    return (double)l->v[k] / 1000.0;
}

#endif
