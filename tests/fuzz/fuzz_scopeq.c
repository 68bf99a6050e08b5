/*
 * fuzz_scopeq.c - libFuzzer target for the scopeQ language
 * (src/query/scopeq.c).
 *
 * Each input is one scopeQ expression (bytes up to the first NUL). It is
 * parsed; on success it is matched against a few fixed scope values (none,
 * one string, an array, a non-string member) and freed. Seeds:
 * tests/fuzz/corpus/scopeq/ (one expression per file).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "query/scopeq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cJSON *scopes[4];
    struct scopeq *q = NULL;
    struct err e = {0};
    char *text;

    if (scopes[0] == NULL) {
        scopes[0] = cJSON_CreateString("/Amsterdam/Centrum/Hoekplein");
        scopes[1] = cJSON_Parse("[\"/Delft\", \"/Pilots/Light/2026\", \"/a/b/c/d/e/f\"]");
        scopes[2] = cJSON_Parse("[1, null, \"/x\"]");
        scopes[3] = cJSON_CreateString("/");
    }
    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (scopeq_parse(text, &q, &e) == 0) {
        (void)scopeq_match(q, NULL);
        for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++)
            (void)scopeq_match(q, scopes[i]);
        scopeq_free(q);
    }
    free(text);
    return 0;
}
