/*
 * fuzz_uplink.c - libFuzzer target for network-server message parsing
 * (src/ingest/uplink.c) and the strict base64 under it (src/util/base64.c).
 *
 * The input goes through the ingest path: uplink_check_size, then cJSON,
 * then uplink_parse as every format and event. A success must give a
 * 16-digit lowercase EUI, a payload within 242 bytes, an fPort within
 * 0..255 and a decoded object or NULL, and its payload is fed to the LPP
 * decoder; a failure must give a reason code and a detail and own nothing.
 * The same bytes are also tried as an MQTT topic and as base64 (whatever
 * decodes must re-encode to exactly the input: one encoding per value).
 * Everything is freed: ASan reports leaks.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_uplink.c
 *        src/ingest/uplink.c src/ingest/lpp.c src/util/base64.c src/util/err.c
 *        src/util/time.c -lcjson -lm
 * Corpus: tests/fuzz/corpus/uplink/ (the JSON fixtures, a few topics)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/lpp.h"
#include "ingest/uplink.h"
#include "util/base64.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_eui(const char *s)
{
    for (int i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[16] == '\0';
}

static void check_parse(const cJSON *msg)
{
    for (int f = UPLINK_CHIRPSTACK_V4; f <= UPLINK_TTS_V3; f++)
        for (int ev = UPLINK_EV_UP; ev <= UPLINK_EV_LOG; ev++) {
            struct uplink u;
            struct err e = {0};
            int rc = uplink_parse((enum uplink_format)f, (enum uplink_event)ev, msg, &u, &e);

            if (rc == 0) {
                struct lpp_value values[LPP_MAX_VALUES];
                size_t n;

                if (u.reason != NULL || !is_eui(u.dev_eui) || u.payload_len > UPLINK_MAX_PAYLOAD ||
                    u.f_port < 0 || u.f_port > 255 ||
                    (u.decoded != NULL && !cJSON_IsObject(u.decoded)) ||
                    strlen(u.log_text) >= sizeof(u.log_text))
                    abort();
                (void)lpp_decode(u.payload, u.payload_len, values, LPP_MAX_VALUES, &n, NULL);
            } else if (rc != ERR_BAD_DATA || u.reason == NULL || e.detail[0] == '\0' ||
                       u.owned != NULL || u.decoded != NULL ||
                       (u.dev_eui[0] != '\0' && !is_eui(u.dev_eui))) {
                abort();
            }
            uplink_free(&u);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum uplink_format f;
    enum uplink_event ev;
    char id[128];
    uint8_t raw[256];
    size_t n;
    char *text;
    cJSON *msg;

    if (uplink_check_size(size) != 0)
        return 0;
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    msg = cJSON_ParseWithLength(text, size);
    if (msg != NULL) {
        check_parse(msg);
        cJSON_Delete(msg);
    }

    if (uplink_topic(text, &f, &ev, id) == 0) {
        if (f < UPLINK_CHIRPSTACK_V4 || f > UPLINK_TTS_V3 || ev < UPLINK_EV_UP ||
            ev > UPLINK_EV_LOG || id[0] == '\0' || strlen(id) >= sizeof(id) ||
            (f != UPLINK_TTS_V3 && !is_eui(id)))
            abort();
    }

    if (b64_decode(text, size, raw, sizeof(raw), &n) == 0) {
        char back[400];

        if (n > sizeof(raw) || b64_encode(raw, n, back, sizeof(back)) != 0 ||
            strlen(back) != size || memcmp(back, text, size) != 0)
            abort();
    }
    free(text);
    return 0;
}
