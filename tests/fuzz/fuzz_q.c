/*
 * fuzz_q.c - libFuzzer target for the q language (src/query/q_*.c).
 *
 * Each input is one q expression (bytes up to the first NUL). It is parsed;
 * on success it is expanded with an identity-ish callback (short names get an
 * https://ex.org/ prefix, except the ones the fixed document uses as is, and
 * a name "failme" makes the callback fail to exercise that path), then
 * evaluated against a small fixed entity document before and after
 * expansion, walked with q_foreach_attr and q_index_hint, and freed.
 * Seeds: tests/fuzz/corpus/q/ (one expression per file).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/q.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const DOC_TEXT =
    "{\"id\": \"urn:ngsi-ld:Thing:1\", \"type\": [\"https://ex.org/Thing\"],"
    " \"createdAt\": \"2026-06-12T08:15:00.000Z\", \"modifiedAt\": \"2026-06-12T09:00:00.000Z\","
    " \"attrs\": {"
    "  \"https://ex.org/temperature\": ["
    "   {\"type\": \"Property\", \"value\": 21.5, \"observedAt\": \"2026-06-12T08:15:00.000Z\","
    "    \"unitCode\": \"CEL\", \"sub\": {\"https://ex.org/accuracy\": {\"type\": \"Property\","
    "    \"value\": 0.5}}},"
    "   {\"type\": \"Property\", \"value\": 30, \"datasetId\": \"urn:ngsi-ld:Dataset:b\"}],"
    "  \"https://ex.org/status\": [{\"type\": \"Property\", \"value\": \"ok\"}],"
    "  \"https://ex.org/tags\": [{\"type\": \"Property\", \"value\": [\"red\", 5, true, null]}],"
    "  \"https://ex.org/address\": [{\"type\": \"Property\", \"value\": {\"city\": \"Berlin\","
    "     \"geo\": {\"zip\": 10115}, \"lines\": [\"a\", \"b\"]}}],"
    "  \"https://ex.org/refDevice\": [{\"type\": \"Relationship\","
    "     \"object\": \"urn:ngsi-ld:D:1\"}],"
    "  \"https://ex.org/route\": [{\"type\": \"ListRelationship\","
    "     \"objectList\": [{\"object\": \"urn:ngsi-ld:S:1\"}, \"urn:ngsi-ld:S:2\"]}],"
    "  \"https://ex.org/name\": [{\"type\": \"LanguageProperty\","
    "     \"languageMap\": {\"en\": \"lamp\", \"de\": [\"Lampe\", 3]}}],"
    "  \"https://ex.org/config\": [{\"type\": \"JsonProperty\", \"json\": [{\"a\": 1}, 2]}],"
    "  \"https://ex.org/when\": [{\"type\": \"Property\", \"value\": \"2020-03-01T10:00:00Z\"}],"
    "  \"https://ex.org/at\": [{\"type\": \"Property\", \"value\": \"18:30:00\"}],"
    "  \"https://ex.org/odd\": [{\"value\": 1}, 7, {\"type\": 3, \"sub\": []}]"
    " }}";

static cJSON *doc;

static char *expand_cb(void *ud, const char *term)
{
    size_t n = strlen(term);
    char *out;

    (void)ud;
    if (strcmp(term, "failme") == 0)
        return NULL;
    if (strstr(term, "://") != NULL || strcmp(term, "observedAt") == 0 ||
        strcmp(term, "createdAt") == 0)
        return strdup(term);
    out = malloc(n + sizeof("https://ex.org/"));
    if (out == NULL)
        return NULL;
    memcpy(out, "https://ex.org/", sizeof("https://ex.org/") - 1);
    memcpy(out + sizeof("https://ex.org/") - 1, term, n + 1);
    return out;
}

static void on_attr(void *ud, const char *attr)
{
    size_t *total = ud;

    *total += strlen(attr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct q_expr *q = NULL;
    struct err e = {0};
    struct q_hint hint;
    size_t total = 0;
    char *text;

    if (doc == NULL && (doc = cJSON_Parse(DOC_TEXT)) == NULL)
        abort();
    if (size > Q_TEXT_MAX + 16)
        size = Q_TEXT_MAX + 16; /* still exercises the length limit */
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (q_parse(text, &q, &e) == 0) {
        if (q == NULL)
            abort();
        (void)q_match(q, doc);
        q_foreach_attr(q, on_attr, &total);
        (void)q_index_hint(q, &hint);
        err_clear(&e);
        if (q_expand(q, expand_cb, NULL, &e) == 0) {
            (void)q_match(q, doc);
            if (q_index_hint(q, &hint) && hint.attr[0] == '\0')
                abort(); /* names are never empty */
        } else if (e.code != ERR_NOMEM) {
            abort();
        }
    } else if (q != NULL || e.code == 0 || e.detail[0] == '\0') {
        abort(); /* failure must report a reason and leave *out NULL */
    }
    q_free(q);
    free(text);
    return 0;
}
