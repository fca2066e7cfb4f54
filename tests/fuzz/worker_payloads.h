/* Shared by the worker's fuzz targets (fuzz_envelope, fuzz_payload): a
 * worker configuration with a PostgreSQL alias ("default") and a SQLite one
 * ("lite"), both granting db.write, and every entry's payload parser run on
 * the same bytes: db_query, db_exec, copy_out's check, copy_in, cancel,
 * tx_begin (plain and nested), tx_commit / tx_rollback and listen. ping and
 * stats take no payload. */
#ifndef MOLT_FUZZ_WORKER_PAYLOADS_H
#define MOLT_FUZZ_WORKER_PAYLOADS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../worker/config.h"
#include "../../worker/copy.h"
#include "../../worker/payload.h"

static mw_config fuzz_cfg;

static void fuzz_setup(void)
{
    static int ready;
    static char *argv[] = {"molt_worker", "--stdio", "--db", "default=postgresql://u@h/d",
                           "--db", "lite=sqlite::memory:", "--allow-write", "lite",
                           "--allow-write", "default", NULL};
    char err[MW_ERR_SIZE];
    if (ready)
        return;
    mw_config_init(&fuzz_cfg);
    FILE *devnull = fopen("/dev/null", "w");
    if (mw_config_parse_args(&fuzz_cfg, 9, argv + 1, devnull, err) != 0) {
        fprintf(stderr, "fuzz: config: %s\n", err);
        __builtin_trap();
    }
    if (devnull)
        fclose(devnull);
    ready = 1;
}

static void fuzz_payloads(const uint8_t *p, size_t n)
{
    char msg[MW_MSG_SIZE];
    for (int write = 0; write < 2; write++) {
        mw_query q;
        memset(&q, 0, sizeof q);
        if (mw_query_parse(&q, write, &fuzz_cfg, p, n, msg) == 0 && !write)
            (void)mw_copy_out_check(&q, msg);
        mw_query_free(&q); /* after a failure too (payload.h) */
    }
    uint64_t target;
    (void)mw_cancel_parse(p, n, &target, msg);
    mw_query q;
    memset(&q, 0, sizeof q);
    (void)mw_copy_in_parse(&q, &fuzz_cfg, p, n, msg);
    mw_query_free(&q);
    for (int begin = 0; begin <= 1; begin++) {
        mw_tx_payload t;
        (void)mw_tx_payload_parse(p, n, begin, &fuzz_cfg, &t, msg);
    }
    mw_listen_payload l;
    (void)mw_listen_parse(p, n, &fuzz_cfg, &l, msg);
    mw_listen_payload_free(&l);
}

#endif
