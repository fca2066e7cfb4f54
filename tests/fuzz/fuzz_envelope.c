/* libFuzzer target: what the worker does with a client's bytes before any
 * database sees them -- framing, the request envelope, and every entry's
 * payload (worker_payloads.h) -- on any input. The input is fed to the
 * framer in pieces whose sizes come from its first byte; every whole frame
 * is parsed as an envelope, and its payload (or, when the envelope does not
 * parse, the frame body itself) as each payload kind, on a PostgreSQL and a
 * SQLite alias. fuzz_payload mutates payloads directly. */
#include <stddef.h>
#include <stdint.h>

#include "../../worker/envelope.h"
#include "../../worker/framing.h"
#include "worker_payloads.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_setup();
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
                fuzz_payloads(env.payload, env.payload_len);
            else
                fuzz_payloads(body, len);
        }
        if (rc < 0)
            break; /* the worker answers InvalidInput and closes */
    }
    mw_framer_free(&f);
    return 0;
}
