/*
 * fuzz_entity.c - libFuzzer target for the entity model.
 *
 * The input is an entity body (JSON). An inline "@context" object is built
 * into an active context (no loader: remote URLs fall back to the core
 * context). The body is then parsed as a whole entity (ENT_FULL) and as a
 * merge fragment (ENT_FRAGMENT | ENT_MERGE); what parses is rendered in the
 * three formats (with sysAttrs and a lang choice), and the fragment is
 * merged / appended / updated into a copy of the full document, so the
 * update operations also see arbitrary shapes. Everything is freed: ASan
 * reports leaks.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_entity.c plus
 *        every .c of src/model and src/ld, src/util/{err,time,hmap}.c, src/query/geo.c;
 *        link -lcjson -lcurl -lpthread -lm.
 * Corpus: tests/fuzz/corpus/entity/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ld/ld.h"
#include "model/entity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void render_all(const cJSON *doc, const struct ld_ctx *ctx)
{
    static const char *const omit[] = {"type", "https://uri.etsi.org/ngsi-ld/location"};
    struct ent_render_opts o;
    struct err e;
    cJSON *out;

    for (int fmt = ENT_NORMALIZED; fmt <= ENT_KEYVALUES; fmt++) {
        memset(&o, 0, sizeof(o));
        o.ctx = ctx;
        o.format = (enum ent_format)fmt;
        o.sys_attrs = fmt != ENT_CONCISE;
        o.lang = fmt == ENT_NORMALIZED ? NULL : "nl,en;q=0.5,*;q=0.1";
        o.omit = omit;
        o.n_omit = fmt == ENT_KEYVALUES ? 2 : 0;
        err_clear(&e);
        out = NULL;
        if (ent_render(doc, &o, &out, &e) == 0) {
            char *text = cJSON_PrintUnformatted(out);
            free(text);
        }
        cJSON_Delete(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    cJSON *body, *full = NULL, *frag = NULL;
    const cJSON *context;
    struct ld_ctx *built = NULL;
    const struct ld_ctx *ctx = ld_core();
    struct err e;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    body = cJSON_Parse(text);
    free(text);
    if (body == NULL)
        return 0;

    context = cJSON_GetObjectItemCaseSensitive(body, "@context");
    err_clear(&e);
    if (context != NULL && ld_ctx_build(context, NULL, &built, &e) == 0)
        ctx = built;

    err_clear(&e);
    if (ent_parse(body, ctx, ENT_FULL, &full, &e) == 0) {
        ent_stamp_new(full, "2026-01-01T00:00:00.000Z");
        render_all(full, ctx);
    }
    err_clear(&e);
    if (ent_parse(body, ctx, ENT_FRAGMENT | ENT_MERGE, &frag, &e) == 0) {
        render_all(frag, ctx);
        if (full != NULL) {
            cJSON *cur = cJSON_Duplicate(full, 1);
            cJSON *up = cJSON_CreateArray(), *nu = cJSON_CreateArray();
            if (cur != NULL) {
                ent_merge(cur, frag, "2026-01-02T00:00:00.000Z");
                ent_append(cur, frag, 0, "2026-01-03T00:00:00.000Z", up, nu);
                ent_update(cur, frag, "2026-01-04T00:00:00.000Z", up, nu);
                ent_append(cur, frag, 1, "2026-01-05T00:00:00.000Z", up, nu);
                render_all(cur, ctx);
                ent_replace(cur, full, "2026-01-06T00:00:00.000Z");
                render_all(cur, ctx);
            }
            cJSON_Delete(up);
            cJSON_Delete(nu);
            cJSON_Delete(cur);
        }
    }
    cJSON_Delete(frag);
    cJSON_Delete(full);
    ld_ctx_release(built);
    cJSON_Delete(body);
    return 0;
}
