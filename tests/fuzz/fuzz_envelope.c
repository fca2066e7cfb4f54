/* libFuzzer target: what the worker does with a client's bytes before any
 * database sees them -- framing, the request envelope, and the db_query /
 * db_exec / cancel payloads -- on any input. The input is fed to the framer
 * in pieces whose sizes come from its first byte; every whole frame is
 * parsed as an envelope, and its payload (or, when the envelope does not
 * parse, the frame body itself) as each payload kind, on a PostgreSQL and a
 * SQLite alias. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../worker/config.h"
#include "../../worker/envelope.h"
#include "../../worker/framing.h"
#include "../../worker/payload.h"

static mw_config cfg;
static int ready;

static void setup(void)
{
    static char *argv[] = {"molt_worker", "--stdio", "--db", "default=postgresql://u@h/d",
                           "--db", "lite=sqlite::memory:", "--allow-write", "lite", NULL};
    char err[MW_ERR_SIZE];
    mw_config_init(&cfg);
    FILE *devnull = fopen("/dev/null", "w");
    if (mw_config_parse_args(&cfg, 7, argv + 1, devnull, err) != 0) {
        fprintf(stderr, "fuzz_envelope: config: %s\n", err);
        __builtin_trap();
    }
    if (devnull)
        fclose(devnull);
    ready = 1;
}

static void payloads(const uint8_t *p, size_t n)
{
    char msg[MW_MSG_SIZE];
    for (int write = 0; write < 2; write++) {
        mw_query q;
        memset(&q, 0, sizeof q);
        (void)mw_query_parse(&q, write, &cfg, p, n, msg);
        mw_query_free(&q); /* after a failure too (payload.h) */
    }
    uint64_t target;
    (void)mw_cancel_parse(p, n, &target, msg);
    for (int begin = 0; begin <= 1; begin++) {
        mw_tx_payload t;
        (void)mw_tx_payload_parse(p, n, begin, &cfg, &t, msg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] % 16) + 1;
    data++;
    size--;
    mw_framer f;
    mw_framer_init(&f, 1 << 20);
    for (size_t off = 0; off < size;) {
        size_t n = size - off < piece ? size - off : piece;
        if (mw_framer_feed(&f, data + off, n) != 0)
            break;
        off += n;
        const uint8_t *body;
        size_t len;
        int rc;
        if (piece % 2 == 0) {
            /* as a paused session does: pick some whole frames out of
             * those buffered (the worker picks cancels), keep the rest */
            size_t pos = 0, at = 0;
            while (mw_framer_peek(&f, &pos, &body, &len) == 1) {
                if (body[0] % 2 == 0) {
                    mw_framer_remove(&f, at, len);
                    pos = at;
                } else {
                    at = pos;
                }
            }
        }
        while ((rc = mw_framer_next(&f, &body, &len)) == 1) {
            mw_envelope env;
            char msg[MW_MSG_SIZE];
            if (mw_envelope_parse(body, len, &env, msg) == 0 && env.payload)
                payloads(env.payload, env.payload_len);
            else
                payloads(body, len);
        }
        if (rc < 0)
            break; /* the worker answers InvalidInput and closes */
    }
    mw_framer_free(&f);
    return 0;
}
