/* lib/base64.c: base64 encoding for binary data carried in JSON. */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>

char *base64_encode(const void *data, size_t len) {
        static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const uint8_t *in = data;
        if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
                return NULL;
        char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
        if (!out)
                return NULL;
        size_t i = 0;
        for (; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
                *p++ = tbl[v >> 18];
                *p++ = tbl[(v >> 12) & 63];
                *p++ = tbl[(v >> 6) & 63];
                *p++ = tbl[v & 63];
        }
        if (i < len) {
                uint32_t v = (uint32_t) in[i] << 16 | (i + 1 < len ? (uint32_t) in[i + 1] << 8 : 0);
                *p++ = tbl[v >> 18];
                *p++ = tbl[(v >> 12) & 63];
                *p++ = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
                *p++ = '=';
        }
        *p = 0;
        return out;
}
