/* lib/base64.c: base64 encoding for binary data carried in JSON. */
#include "base64.h"

#include <errno.h>
#include <stdbool.h>
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

static int sextet(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int base64_decode(const char *s, size_t len, void **ret, size_t *ret_len) {
        if (len % 4 != 0)
                return -EINVAL;
        size_t pad = len >= 1 && s[len - 1] == '=' ? (len >= 2 && s[len - 2] == '=' ? 2 : 1) : 0;
        uint8_t *out = malloc(len / 4 * 3 + 1), *p = out;
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int v[4];
                for (int k = 0; k < 4; k++) {
                        v[k] = sextet(s[i + k]);
                        if (v[k] < 0 && !(last && k >= 4 - (int) pad)) {
                                free(out);
                                return -EINVAL;
                        }
                }
                uint32_t w = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 |
                             (uint32_t) (v[2] < 0 ? 0 : v[2]) << 6 | (uint32_t) (v[3] < 0 ? 0 : v[3]);
                *p++ = (uint8_t) (w >> 16);
                if (!(last && pad == 2))
                        *p++ = (uint8_t) (w >> 8);
                if (!(last && pad >= 1))
                        *p++ = (uint8_t) w;
        }
        *ret = out;
        *ret_len = (size_t) (p - out);
        return 0;
}
