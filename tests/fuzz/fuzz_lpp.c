/*
 * fuzz_lpp.c - libFuzzer target for the Cayenne LPP decoder (src/ingest/lpp.c).
 *
 * The input is a raw payload. It is decoded with room for every value and
 * again with a small cap taken from the input length, and the outcomes are
 * checked against each other and the contract: success means at least one
 * value with a known type, name, unit and 1 or 3 components (or the empty
 * payload); failure reports a reason and no values; a cap below the value
 * count is LPP_TOO_MANY and nothing else.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_lpp.c
 *        src/ingest/lpp.c src/util/err.c
 * Corpus: tests/fuzz/corpus/lpp/ (payloads as binary files)
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/lpp.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lpp_value all[LPP_MAX_VALUES], few[4];
    size_t n_all = 99, n_few = 99, cap_few = size % 5;
    enum lpp_error why_all, why_few;
    int rc_all, rc_few;

    if (size > 255)
        size = 255; /* LoRaWAN payloads are at most 242 bytes */
    rc_all = lpp_decode(data, size, all, LPP_MAX_VALUES, &n_all, &why_all);
    rc_few = lpp_decode(data, size, few, cap_few, &n_few, &why_few);
    if (rc_all == 0) {
        if (size == 0 ? (why_all != LPP_EMPTY || n_all != 0) : (why_all != LPP_OK || n_all == 0))
            abort();
        for (size_t i = 0; i < n_all; i++) {
            const struct lpp_value *v = &all[i];

            if (v->name == NULL || lpp_type_name(v->type) != v->name ||
                lpp_type_unit(v->type) != v->unit || (v->n != 1 && v->n != 3))
                abort();
            for (int k = 0; k < 3; k++)
                if (!isfinite(v->v[k]) || (k >= v->n && v->v[k] != 0.0))
                    abort();
        }
        if (n_all > cap_few ? (rc_few != ERR_TOO_LARGE || why_few != LPP_TOO_MANY)
                            : (rc_few != 0 || n_few != n_all ||
                               memcmp(few, all, n_all * sizeof(all[0])) != 0))
            abort();
    } else {
        if (n_all != 0 || rc_all != ERR_BAD_DATA ||
            (why_all != LPP_TRUNCATED && why_all != LPP_UNKNOWN_TYPE))
            abort(); /* 255 bytes never exceed LPP_MAX_VALUES */
        if (rc_few == 0 || n_few != 0)
            abort();
    }
    if (strcmp(lpp_error_name(why_all), "?") == 0)
        abort();
    return 0;
}
