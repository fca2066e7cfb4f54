/* libFuzzer target: the worker's placeholder lexer and SQL rewrite on any
 * bytes, in both dialects and all modes. The first byte picks the dialect,
 * mode and value count; value names are cut from the input's tail. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../worker/params.h"

static int count(void *ud, const mw_placeholder *ph)
{
    (void)ph;
    (*(size_t *)ud)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const char *sql = (const char *)data + 1;
    size_t len = size - 1;
    mw_dialect d = (ctl & 1) ? MW_DIALECT_SQLITE : MW_DIALECT_PG;
    mw_param_mode mode = (mw_param_mode)((ctl >> 1) % 3);
    size_t nvalues = (ctl >> 3) & 7;
    mw_param_name names[8];
    static const char *pool[] = {"a", "b", "c", "id", "x_1", "name", "z", "a"};
    for (size_t i = 0; i < nvalues; i++) {
        names[i].name = pool[i];
        names[i].len = strlen(pool[i]);
    }
    size_t n = 0;
    mw_params_scan(sql, len, d, count, &n);
    mw_rewrite rw;
    char err[MW_PARAMS_ERR_SIZE];
    if (mw_params_rewrite(sql, len, d, mode, nvalues, names, &rw, err) == 0) {
        /* every slot names a value */
        for (size_t k = 0; k < rw.nslots; k++)
            if (rw.slot_value[k] >= nvalues)
                __builtin_trap();
        if (rw.sql[rw.sql_len] != 0)
            __builtin_trap();
        mw_rewrite_free(&rw);
    }
    return 0;
}
