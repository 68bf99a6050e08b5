/*
 * json.h - JSON output for cJSON trees, faster than cJSON_PrintUnformatted.
 *
 * cJSON prints every number with sprintf("%1.15g") plus an sscanf round
 * trip (about 1 us each); entities are mostly numbers, so printing
 * dominated a GET. This writer prints integral values with an integer
 * fast path and other doubles with "%.15g", checked by strtod and widened
 * to "%.17g" only when needed (the same shortest-safe rule as cJSON), and
 * escapes strings in one pass. Output equals cJSON's except where cJSON
 * loses precision (its round-trip check compares with an epsilon, so it
 * prints 0.30000000000000004 as 0.3): here every double reads back exactly
 * (tested). Any thread; no global state.
 */
#ifndef PL_JSON_H
#define PL_JSON_H

#include <stddef.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/buf.h"

/* Append the compact JSON text of item to b. ERR_NOMEM / ERR_TOO_LARGE
 * (b's cap). Invalid numbers (NaN, inf) print as null, as cJSON does. */
int json_write(struct buf *b, const cJSON *item);

#define JSON_NUM_MAX 40 /* buffer size for json_number_text */

/* 10^0 .. 10^9 */
extern const double json_pow10[10];

/* d as a short decimal: the fewest fraction digits k (0-9) with
 * m / 10^k == d exactly (m below 2^53; the division is correctly rounded,
 * as strtod rounds the printed text); -1 when there are none. */
int json_decimal(double d, long long *m);

/* The text json_write gives the number d (NUL-terminated in out, which
 * holds JSON_NUM_MAX bytes): the shortest that reads back as d; "null" for
 * NaN and infinities. Returns its length. */
size_t json_number_text(double d, char out[JSON_NUM_MAX]);

/* Print item to a new string (caller frees); NULL when out of memory.
 * *len (may be NULL) receives the length. */
char *json_print(const cJSON *item, size_t *len);

/* obj's member name (case-sensitive), NULL when absent: as
 * cJSON_GetObjectItemCaseSensitive, but a member is compared only when its
 * first byte matches (the writer's hot paths look up "datasetId",
 * "observedAt"... among an instance's members per instance). */
static inline cJSON *json_member(const cJSON *obj, const char *name)
{
    if (name == NULL)
        return NULL;
    for (cJSON *c = obj ? obj->child : NULL; c != NULL; c = c->next)
        if (c->string != NULL && c->string[0] == name[0] && strcmp(c->string, name) == 0)
            return c;
    return NULL;
}

#endif
