/* libFuzzer target: the input is one payload, run through every entry's
 * payload parser (worker_payloads.h). Inside fuzz_envelope a payload is a
 * bin in the envelope map, so most mutations of its length break the
 * envelope before the payload parsers see them; here every mutation
 * reaches them. */
#include <stddef.h>
#include <stdint.h>

#include "worker_payloads.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_setup();
    fuzz_payloads(data, size);
    return 0;
}
