/* activator/reqid.c: request ids and trace context (see reqid.h). */
#include "activator/reqid.h"

#include <string.h>

bool reqid_ok(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > REQID_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      strchr("._:/+=-", c)))
                        return false;
        }
        return true;
}

static bool hex_lower(const char *s, size_t n, bool nonzero) {
        bool any = false;
        for (size_t i = 0; i < n; i++) {
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
                any |= s[i] != '0';
        }
        return any || !nonzero;
}

bool traceparent_ok(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n < TRACEPARENT_LEN || n > 512 || !hex_lower(s, 2, false) || strncmp(s, "ff", 2) == 0)
                return false;
        if (s[2] != '-' || s[35] != '-' || s[52] != '-')
                return false;
        if (!hex_lower(s + 3, 32, true) || !hex_lower(s + 36, 16, true) || !hex_lower(s + 53, 2, false))
                return false;
        if (strncmp(s, "00", 2) == 0)
                return n == TRACEPARENT_LEN;
        /* a later version may add fields after a '-'; printable only */
        if (n > TRACEPARENT_LEN && s[TRACEPARENT_LEN] != '-')
                return false;
        for (size_t i = TRACEPARENT_LEN; i < n; i++)
                if (s[i] <= 0x20 || s[i] >= 0x7f)
                        return false;
        return true;
}

/* 16 lowercase hex digits of v at p (no NUL): a request's ids are made on
 * every request, where snprintf was a measurable part of the cost. */
static char *hex16(char *p, uint64_t v) {
        static const char digits[] = "0123456789abcdef";
        for (int i = 15; i >= 0; i--, v >>= 4)
                p[i] = digits[v & 15];
        return p + 16;
}

void reqid_make(uint64_t r1, uint64_t r2, char ret[33]) {
        char *p = hex16(hex16(ret, r1), r2);
        *p = 0;
}

void traceparent_make(uint64_t r1, uint64_t r2, uint64_t r3, char ret[TRACEPARENT_LEN + 1]) {
        if ((r1 | r2) == 0)
                r2 = 1;
        if (r3 == 0)
                r3 = 1;
        char *p = ret;
        memcpy(p, "00-", 3);
        p = hex16(hex16(p + 3, r1), r2);
        *p++ = '-';
        p = hex16(p, r3);
        memcpy(p, "-01", 4);
}
